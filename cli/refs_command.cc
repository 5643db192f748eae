#include <cstdio>

#include "cli/commands.h"
#include "store/ref_store.h"

namespace refzarr {

Status PrintRefs(const std::filesystem::path& index, std::string_view array, std::ostream& out) {
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadOnly));
  std::string path(array);
  while (!path.empty() && path.back() == '/') path.pop_back();
  ASSIGN_OR_RETURN(auto node, store->GetNode(path));
  if (!node || node->kind != NodeKind::kArray) {
    return NotFoundError("no array '" + path + "' in " + index.string());
  }
  ASSIGN_OR_RETURN(ArrayDesc desc, ArrayDesc::FromJson(node->meta.at("array")));
  auto sources = node->meta.at("sources").get<std::vector<int64_t>>();
  std::vector<std::string> uris;
  for (int64_t id : sources) {
    ASSIGN_OR_RETURN(SourceInfo s, store->GetSource(id));
    uris.push_back(DisplaySource(s.uri));
  }
  auto grid = desc.GridShape();
  ASSIGN_OR_RETURN(auto blocks, store->BlockNumbers(node->id));
  for (uint64_t b : blocks) {
    ASSIGN_OR_RETURN(auto entries, store->GetBlock(node->id, b));
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!entries[i].present) continue;
      const ChunkRef& r = entries[i].ref;
      std::string key = path;
      auto coords = ChunkCoords(grid, b * kBlockSize + i);
      if (coords.empty()) key += "/0";
      for (uint64_t c : coords) key += "/" + std::to_string(c);
      std::string uri = (r.flags & kChunkInline) ? "inline"
                        : r.source < uris.size()  ? uris[r.source]
                                                  : "?";
      out << key << "\t" << uri << "\t" << r.offset << "\t" << r.length;
      if (r.flags & ~kChunkInline) out << "\tflags=" << (r.flags & ~kChunkInline);
      if (entries[i].crc32c) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%08x", *entries[i].crc32c);
        out << "\tcrc32c=" << hex;
      }
      out << "\n";
    }
  }
  return OkStatus();
}

void AddRefsCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, array;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("refs", "TSV of an array's chunk references (debugging)");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("array", args->array, "Array path, e.g. a.tif/0/0")->required();
  cmd->callback([&ctx, args] {
    Status st = PrintRefs(args->index, args->array, ctx.out);
    if (!st.ok()) {
      ctx.err << "refzarr: refs: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
