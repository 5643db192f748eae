#include "cli/commands.h"

namespace refzarr {

namespace {

// Entries per page asked of the view: what one level of the walk holds in memory.
constexpr size_t kLsPage = 1000;

// Prints the directory `base` from its first page on, page by page, descending into
// sub-directories as they come when `recursive`: memory is one page per level of depth, and the
// first keys are out before the rest is read.
Status ListPages(ZarrView& view, const std::string& base, std::vector<DirEntry> page,
                 bool recursive, std::ostream& out) {
  while (true) {
    for (const DirEntry& e : page) {
      std::string key = base.empty() ? e.name : base + "/" + e.name;
      out << key << (e.is_directory ? "/" : "") << "\n";
      if (!recursive || !e.is_directory) continue;
      ASSIGN_OR_RETURN(auto below, view.ListPage(key, "", kLsPage));
      if (below) RETURN_IF_ERROR(ListPages(view, key, std::move(*below), true, out));
    }
    if (page.size() < kLsPage) return OkStatus();
    std::string after = page.back().name;
    ASSIGN_OR_RETURN(auto next, view.ListPage(base, after, kLsPage));
    if (!next) return OkStatus();
    page = std::move(*next);
  }
}

}  // namespace

Status ListKeys(ZarrView& view, std::string_view prefix, bool recursive, std::ostream& out) {
  std::string base(prefix);
  while (!base.empty() && base.back() == '/') base.pop_back();
  ASSIGN_OR_RETURN(auto first, view.ListPage(base, "", kLsPage));
  if (!first) {
    ASSIGN_OR_RETURN(auto st, view.Stat(base));
    if (st.first == EntryKind::kFile) {
      out << base << "\n";
      return OkStatus();
    }
    return NotFoundError("no key or directory '" + base + "' in the view");
  }
  return ListPages(view, base, std::move(*first), recursive, out);
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
