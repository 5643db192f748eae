#include "cli/commands.h"

namespace refzarr {

Status ListKeys(ZarrView& view, std::string_view prefix, bool recursive, std::ostream& out) {
  std::string base(prefix);
  while (!base.empty() && base.back() == '/') base.pop_back();
  ASSIGN_OR_RETURN(auto entries, view.List(base));
  if (!entries) {
    ASSIGN_OR_RETURN(auto st, view.Stat(base));
    if (st.first == EntryKind::kFile) {
      out << base << "\n";
      return OkStatus();
    }
    return NotFoundError("no key or directory '" + base + "' in the view");
  }
  for (const DirEntry& e : *entries) {
    std::string key = base.empty() ? e.name : base + "/" + e.name;
    out << key << (e.is_directory ? "/" : "") << "\n";
    if (recursive && e.is_directory) RETURN_IF_ERROR(ListKeys(view, key, true, out));
  }
  return OkStatus();
}

void AddLsCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, prefix;
    bool recursive = false;
    ViewFlags view;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("ls", "List keys of the virtual OME-Zarr");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("prefix", args->prefix, "A directory of the view (default: the root)");
  cmd->add_flag("-r,--recursive", args->recursive, "List everything below, chunks included");
  args->view.AddTo(cmd);
  cmd->callback([&ctx, args] {
    Status st = [&]() -> Status {
      ASSIGN_OR_RETURN(ViewOptions options, args->view.ToOptions());
      ASSIGN_OR_RETURN(auto view, OpenZarrView(args->index, options));
      return ListKeys(*view, args->prefix, args->recursive, ctx.out);
    }();
    if (!st.ok()) {
      ctx.err << "refzarr: ls: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
