#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace refzarr {

namespace {

// Entries per page asked of the view: what one level of the walk holds in memory.
constexpr size_t kLsPage = 1000;

bool IsMetadataName(std::string_view name) {
  return name == ".zarray" || name == ".zattrs" || name == ".zgroup" || name == ".zmetadata" ||
         name == "zarr.json";
}

// What the directory `key` is: "image" (an OME-NGFF multiscale group), "group", "array", or "dir"
// (a level of chunk keys, a folder without metadata), from its metadata as the view serves it.
Result<std::string> DirectoryKind(ZarrView& view, const std::string& key) {
  auto get_json = [&view, &key](std::string_view name) -> Result<std::optional<nlohmann::json>> {
    ASSIGN_OR_RETURN(auto value, view.Get(key.empty() ? std::string(name) : key + "/" + std::string(name)));
    if (!value) return std::optional<nlohmann::json>();
    ASSIGN_OR_RETURN(std::string bytes, view.Materialize(*value));
    nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
    return j.is_discarded() ? std::optional<nlohmann::json>() : std::optional(std::move(j));
  };
  if (view.options().zarr_format == 3) {
    ASSIGN_OR_RETURN(auto node, get_json("zarr.json"));
    if (!node) return std::string("dir");
    if (node->value("node_type", "") == "array") return std::string("array");
    const nlohmann::json& attrs = node->value("attributes", nlohmann::json::object());
    const bool image = attrs.contains("ome") && attrs["ome"].contains("multiscales");
    return std::string(image ? "image" : "group");
  }
  ASSIGN_OR_RETURN(auto zarray, get_json(".zarray"));
  if (zarray) return std::string("array");
  ASSIGN_OR_RETURN(auto zattrs, get_json(".zattrs"));
  if (zattrs && zattrs->contains("multiscales")) return std::string("image");
  ASSIGN_OR_RETURN(auto zgroup, get_json(".zgroup"));
  return std::string(zgroup || zattrs ? "group" : "dir");
}

struct ListStyle {
  bool recursive = false;
  bool long_format = false;
};

// Prints the directory `base` (of kind `base_kind` for the long format) from its first page on,
// page by page, descending into sub-directories as they come when recursive: memory is one page
// per level of depth, and the first keys are out before the rest is read.
Status ListPages(ZarrView& view, const std::string& base, const std::string& base_kind,
                 std::vector<DirEntry> page, const ListStyle& style, std::ostream& out) {
  // Below an array, every directory is a level of chunk keys and every file a chunk.
  const bool in_array = base_kind == "array" || base_kind == "chunks";
  while (true) {
    for (const DirEntry& e : page) {
      std::string key = base.empty() ? e.name : base + "/" + e.name;
      std::string kind;
      if (style.long_format) {
        char line[64];
        if (e.is_directory) {
          if (in_array) {
            kind = "chunks";
          } else {
            ASSIGN_OR_RETURN(kind, DirectoryKind(view, key));
          }
          std::snprintf(line, sizeof line, "%-8s %14s  ", kind == "chunks" ? "dir" : kind.c_str(), "-");
        } else {
          uint64_t size = 0;
          if (e.size) {
            size = *e.size;
          } else {
            ASSIGN_OR_RETURN(auto st, view.Stat(key));
            size = st.second;
          }
          const char* file_kind = IsMetadataName(e.name) ? "metadata" : in_array ? "chunk" : "file";
          std::snprintf(line, sizeof line, "%-8s %14llu  ", file_kind,
                        static_cast<unsigned long long>(size));
        }
        out << line;
      }
      out << key << (e.is_directory ? "/" : "") << "\n";
      if (!style.recursive || !e.is_directory) continue;
      ASSIGN_OR_RETURN(auto below, view.ListPage(key, "", kLsPage));
      if (below) RETURN_IF_ERROR(ListPages(view, key, kind, std::move(*below), style, out));
    }
    if (page.size() < kLsPage) return OkStatus();
    std::string after = page.back().name;
    ASSIGN_OR_RETURN(auto next, view.ListPage(base, after, kLsPage));
    if (!next) return OkStatus();
    page = std::move(*next);
  }
}

}  // namespace

Status ListKeys(ZarrView& view, std::string_view prefix, bool recursive, std::ostream& out,
                bool long_format) {
  std::string base(prefix);
  while (!base.empty() && base.back() == '/') base.pop_back();
  ASSIGN_OR_RETURN(auto first, view.ListPage(base, "", kLsPage));
  if (!first) {
    ASSIGN_OR_RETURN(auto st, view.Stat(base));
    if (st.first == EntryKind::kFile) {
      if (long_format) {
        char line[64];
        std::snprintf(line, sizeof line, "%-8s %14llu  ", "file", static_cast<unsigned long long>(st.second));
        out << line;
      }
      out << base << "\n";
      return OkStatus();
    }
    return NotFoundError("no key or directory '" + base + "' in the view");
  }
  std::string kind;
  if (long_format) {
    ASSIGN_OR_RETURN(kind, DirectoryKind(view, base));
  }
  return ListPages(view, base, kind, std::move(*first), ListStyle{recursive, long_format}, out);
}

void AddLsCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, prefix;
    bool recursive = false;
    bool long_format = false;
    ViewFlags view;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("ls", "List keys of the virtual OME-Zarr");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("prefix", args->prefix, "A directory of the view (default: the root)");
  cmd->add_flag("-r,--recursive", args->recursive, "List everything below, chunks included");
  cmd->add_flag("-l,--long", args->long_format,
                "Show each entry's kind (image, group, array, dir, metadata, chunk, file) and size "
                "in bytes");
  args->view.AddTo(cmd);
  cmd->callback([&ctx, args] {
    Status st = [&]() -> Status {
      ASSIGN_OR_RETURN(ViewOptions options, args->view.ToOptions());
      ASSIGN_OR_RETURN(auto view, OpenZarrView(args->index, options));
      return ListKeys(*view, args->prefix, args->recursive, ctx.out, args->long_format);
    }();
    if (!st.ok()) {
      ctx.err << "refzarr: ls: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
