#include "cli/commands.h"

namespace refzarr {

Status CatKey(ZarrView& view, std::string_view key, std::ostream& out) {
  ASSIGN_OR_RETURN(auto value, view.Get(key));
  if (!value) return NotFoundError("no key '" + std::string(key) + "' in the view");
  ASSIGN_OR_RETURN(std::string bytes, view.Materialize(*value));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (value->is_metadata) out << "\n";
  return OkStatus();
}

void AddCatCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, key;
    ViewFlags view;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("cat", "Write the bytes of one key (metadata or chunk)");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("key", args->key, "A key of the view, e.g. a.tif/0/0/.zarray")->required();
  args->view.AddTo(cmd);
  AddRemoteFlags(cmd);
  cmd->callback([&ctx, args] {
    Status st = [&]() -> Status {
      ASSIGN_OR_RETURN(ViewOptions options, args->view.ToOptions());
      ASSIGN_OR_RETURN(auto view, OpenZarrView(args->index, options));
      return CatKey(*view, args->key, ctx.out);
    }();
    if (!st.ok()) {
      ctx.err << "refzarr: cat: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
