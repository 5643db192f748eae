// `refzarr rm DB PATH...`: removes scanned files, or whole folders of them, from an index.
#include "cli/commands.h"
#include "store/ref_store.h"

namespace refzarr {
namespace {

// A tree path as `ls` shows it, without the slashes a user may add around it; "/" is the root.
std::string NormaliseTreePath(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return std::string(path);
}

std::string Files(uint64_t n) { return std::to_string(n) + (n == 1 ? " file" : " files"); }

// Why `path` removed nothing: it is part of a file (rm takes whole files), or it is not there.
Status NothingAt(RefStore& store, const std::string& path) {
  ASSIGN_OR_RETURN(auto node, store.GetNode(path));
  if (node && node->owner) {
    ASSIGN_OR_RETURN(SourceInfo file, store.GetSource(*node->owner));
    return InvalidArgumentError("'" + path + "' is part of the file '" + file.group +
                                "': rm removes whole files and folders");
  }
  return NotFoundError("'" + path + "': no such file or folder in the index");
}

}  // namespace

Status RemoveTreePaths(const std::filesystem::path& index, const std::vector<std::string>& paths,
                       std::ostream& out, std::ostream& err) {
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadWrite));
  size_t missing = 0;
  for (const std::string& given : paths) {
    const std::string path = NormaliseTreePath(given);
    // One transaction per path: a path that fails leaves the others removed.
    Result<uint64_t> removed = store->RemoveTree(path);
    Status st = removed.ok() ? OkStatus() : removed.status();
    if (st.ok() && *removed == 0) st = NothingAt(*store, path);
    if (!st.ok()) {
      err << "refzarr: rm: " << st.message() << "\n";
      ++missing;
      continue;
    }
    out << "removed " << (path.empty() ? "/" : path) << " (" << Files(*removed) << ")\n";
  }
  if (missing > 0) {
    return NotFoundError(std::to_string(missing) + " of " + std::to_string(paths.size()) +
                         " paths removed nothing");
  }
  return OkStatus();
}

void AddRmCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index;
    std::vector<std::string> paths;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "rm", "Remove files, or folders of files, from an index (and the groups left empty)");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("paths", args->paths,
                  "Tree paths as `refzarr ls` shows them: a file's group (folder/a.tif) or a "
                  "folder group (folder: every file under it; / : every file)")
      ->required();
  cmd->callback([&ctx, args] {
    Status st = RemoveTreePaths(args->index, args->paths, ctx.out, ctx.err);
    if (!st.ok()) {
      ctx.err << "refzarr: rm: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
