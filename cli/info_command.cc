#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "formats/registry/registry.h"
#include "store/ref_store.h"

namespace refzarr {

Status PrintInfo(const std::filesystem::path& index, bool as_json, bool verify, std::ostream& out) {
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadOnly));
  ASSIGN_OR_RETURN(StoreStats st, store->Stats());
  ASSIGN_OR_RETURN(auto sources, store->Sources());
  nlohmann::json files = nlohmann::json::array();
  uint64_t stale = 0;
  for (const SourceInfo& s : sources) {
    std::string state = s.status;
    std::string detail = s.error;
    if (s.status != "failed") {
      // A stat per source by default: an archive of millions of files is checked in seconds.
      // --verify also reads the fingerprint span (up to 128 KiB a file), as serving does once.
      const SourceOpeners& openers = DefaultSourceOpeners();
      auto now = verify ? ProbeSource(s.uri, nullptr, 0, openers) : StatSource(s.uri, openers);
      std::string change = now.ok() ? DescribeChange(s, *now) : now.status().message();
      if (!change.empty()) {
        state = "stale";
        detail = change;
        ++stale;
      }
    }
    files.push_back({{"path", DisplaySource(s.uri)}, {"uri", s.uri}, {"group", s.group}, {"status", state}, {"size", s.size},
                     {"detail", detail}});
  }
  // Every refusal is listed in JSON; the human summary names the first few.
  constexpr size_t kListed = 20;
  ASSIGN_OR_RETURN(auto refusals, store->RefusedArrays(as_json ? st.refused_arrays : kListed));
  nlohmann::json refused = nlohmann::json::array();
  for (const RefusedArray& r : refusals) {
    refused.push_back({{"path", r.path}, {"source", r.source}, {"reason", r.reason}});
  }
  if (as_json) {
    out << nlohmann::json{{"index", index.string()}, {"sources", st.sources},
                          {"refused_arrays", st.refused_arrays}, {"refused", refused},
                          {"failed_sources", st.failed_sources}, {"stale_sources", stale},
                          {"groups", st.groups}, {"arrays", st.arrays}, {"images", st.images},
                          {"chunk_references", st.chunk_refs}, {"reference_bytes", st.block_bytes},
                          {"index_bytes", st.index_bytes}, {"files", files}}
               .dump(2)
        << "\n";
    return OkStatus();
  }
  out << "index:            " << index.string() << "\n"
      << "sources:          " << st.sources << " indexed, " << st.failed_sources << " failed, "
      << stale << " stale\n"
      << "images (series):  " << st.images << "\n"
      << "groups / arrays:  " << st.groups << " / " << st.arrays << " (" << st.refused_arrays
      << " arrays refused)\n"
      << "chunk references: " << st.chunk_refs << " (" << st.block_bytes << " bytes, "
      << (st.chunk_refs ? static_cast<double>(st.block_bytes) / st.chunk_refs : 0.0)
      << " bytes each)\n"
      << "index size:       " << st.index_bytes << " bytes\n";
  for (const RefusedArray& r : refusals) {
    out << "refused: " << r.path << ": " << r.reason << "\n";
  }
  if (st.refused_arrays > refusals.size()) {
    out << "refused: ... and " << st.refused_arrays - refusals.size() << " more (--json lists all)\n";
  }
  for (const auto& f : files) {
    std::string status = f["status"];
    if (status == "ok" || status == "companion") continue;
    out << status << ": " << f["path"].get<std::string>() << ": "
        << f["detail"].get<std::string>() << "\n";
  }
  return OkStatus();
}

void AddInfoCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index;
    bool json = false;
    bool verify = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("info", "Summarise an index: sources, series, references");
  AddRemoteFlags(cmd);
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->add_flag("--verify", args->verify,
                "Also compare each source's content fingerprint (reads up to 128 KiB a file); "
                "without it, size and modification time are compared");
  cmd->callback([&ctx, args] {
    Status st = PrintInfo(args->index, args->json, args->verify, ctx.out);
    if (!st.ok()) {
      ctx.err << "refzarr: info: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
