// `refzarr relocate DB OLD NEW`: rewrites source URIs under a prefix after the sources moved,
// without rescanning; every source is checked at its new URI before it is accepted.
#include "cli/commands.h"
#include "store/ref_store.h"

namespace refzarr {
namespace {

// A prefix as a URI without trailing '/': local paths become file:// URIs (FileUri), so they
// compare with the index's URIs byte for byte; "file:///" becomes "file://", the root.
std::string PrefixUri(std::string_view given) {
  std::string uri = UriScheme(given).empty() ? FileUri(std::filesystem::path(given))
                                             : std::string(given);
  while (!uri.empty() && uri.back() == '/') uri.pop_back();
  return uri;
}

// Why the source `indexed` may not be accepted as `now` (found at its new URI), or empty. The
// generation always differs after a move (another inode, or the ctime a rename sets), so only
// size and content decide; a failed file keeps its failure record wherever it is.
std::string Mismatch(const SourceInfo& indexed, const Result<SourceInfo>& now) {
  if (!now.ok()) return now.status().message();
  if (indexed.status == "failed") return "";
  SourceInfo same_generation = *now;
  same_generation.generation = indexed.generation;
  return DescribeChange(indexed, same_generation);
}

}  // namespace

Status RelocateSources(const std::filesystem::path& index, std::string_view old_prefix,
                       std::string_view new_prefix, std::ostream& out, std::ostream& err,
                       const SourceOpeners& openers) {
  const std::string from = PrefixUri(old_prefix), to = PrefixUri(new_prefix);
  if (from == to) return InvalidArgumentError("OLD and NEW are the same (" + from + ")");
  // Rows moved under `from` again would be met again by the paging below; a folder cannot be
  // moved into itself anyway.
  if (to.size() > from.size() && to.compare(0, from.size() + 1, from + "/") == 0) {
    return InvalidArgumentError("NEW (" + to + ") is inside OLD (" + from + ")");
  }
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadWrite));
  constexpr size_t kPage = 256;  // sources probed, then committed, per batch
  uint64_t files = 0, companions = 0, refused = 0;
  std::string after_uri;
  int64_t after_owner = 0;
  // A companion shared by several files has a row per file, adjacent in (uri, owner) order:
  // probed once.
  std::string probed_uri;
  Result<SourceInfo> probed = NotFoundError("");
  while (true) {
    ASSIGN_OR_RETURN(auto page, store->SourcesAtOrUnder(from, after_uri, after_owner, kPage));
    if (page.empty()) break;
    after_uri = page.back().info.uri;
    after_owner = page.back().owner;
    std::vector<RefStore::SourceMove> moves;
    std::vector<const RefStore::OwnedSource*> moved;
    for (const RefStore::OwnedSource& row : page) {
      const std::string target = to + row.info.uri.substr(from.size());
      if (target != probed_uri) {
        probed = ProbeSource(target, nullptr, 0, openers);
        probed_uri = target;
      }
      std::string why = Mismatch(row.info, probed);
      if (!why.empty()) {
        err << "refzarr: relocate: " << DisplaySource(row.info.uri) << " -> "
            << DisplaySource(target) << ": " << why << " (left at its old location)\n";
        ++refused;
        continue;
      }
      moves.push_back({row.info.id, target, probed->generation});
      moved.push_back(&row);
    }
    ASSIGN_OR_RETURN(std::vector<size_t> taken, store->MoveSources(moves));
    size_t next_taken = 0;
    for (size_t i = 0; i < moves.size(); ++i) {
      if (next_taken < taken.size() && taken[next_taken] == i) {
        ++next_taken;
        err << "refzarr: relocate: " << DisplaySource(moved[i]->info.uri) << " -> "
            << DisplaySource(moves[i].uri)
            << ": the index already has that source (left at its old location)\n";
        ++refused;
        continue;
      }
      ++(moved[i]->owner == 0 ? files : companions);
    }
  }
  // The index's root moves with them when it was at or under OLD, so the next `index` of the new
  // location places its files where they were.
  ASSIGN_OR_RETURN(std::optional<std::string> root, store->GetMeta("root"));
  if (root && files > 0 &&
      (*root == from || root->compare(0, from.size() + 1, from + "/") == 0)) {
    RETURN_IF_ERROR(store->SetMeta("root", to + root->substr(from.size())));
    out << "the index's root is now " << DisplaySource(to + root->substr(from.size())) << "\n";
  }
  out << "relocated " << files << (files == 1 ? " file" : " files") << " and " << companions
      << (companions == 1 ? " companion" : " companions") << " from " << DisplaySource(from)
      << " to " << DisplaySource(to);
  if (refused > 0) out << "; " << refused << " left at their old location";
  out << "\n";
  if (files + companions + refused == 0) {
    return NotFoundError("no source of the index is at or under " + DisplaySource(from));
  }
  if (refused > 0) {
    return InvalidArgumentError(std::to_string(refused) +
                                " sources failed the check at their new location");
  }
  return OkStatus();
}

void AddRelocateCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, old_prefix, new_prefix;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "relocate",
      "Point the sources under OLD at NEW after they moved, without rescanning: each is "
      "checked (size and content fingerprint) at its new location first");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("old", args->old_prefix,
                  "The sources' old folder, file or URI prefix (whole path components)")
      ->required();
  cmd->add_option("new", args->new_prefix, "Their new folder, file or URI prefix")->required();
  cmd->callback([&ctx, args] {
    Status st = RelocateSources(args->index, args->old_prefix, args->new_prefix, ctx.out,
                                ctx.err, LocalSourceOpeners());
    if (!st.ok()) {
      ctx.err << "refzarr: relocate: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
