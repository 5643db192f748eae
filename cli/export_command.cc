#include <fstream>

#include "cli/commands.h"
#include "formats/registry/registry.h"
#include "store/kerchunk_export.h"

namespace refzarr {

void AddExportCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, output;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write a kerchunk reference file (version 1) for fsspec, zarr-python and GDAL");
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("-o,--output", args->output, "The JSON file to write ('-': stdout)")->required();
  AddRemoteFlags(cmd);
  cmd->callback([&ctx, args] {
    Status st = [&]() -> Status {
      std::ofstream file;
      std::ostream* out = &ctx.out;
      std::string tmp = args->output + ".tmp";
      if (args->output != "-") {
        file.open(tmp, std::ios::binary | std::ios::trunc);
        if (!file) return IoError(tmp + ": cannot write");
        out = &file;
      }
      auto report = ExportKerchunk(args->index, *out, DefaultSourceOpeners());
      if (!report.ok()) {
        if (args->output != "-") std::filesystem::remove(tmp);
        return report.status();
      }
      if (args->output != "-") {
        file.close();
        if (!file) return IoError(tmp + ": write failed");
        std::filesystem::rename(tmp, args->output);
      }
      ctx.err << "exported " << report->metadata_keys << " metadata keys, " << report->chunk_refs
              << " chunk references, " << report->inline_chunks << " inline chunks\n";
      if (!report->foreign_codecs.empty() || !report->notes.empty()) {
        ctx.err << "arrays that zarr-python with numcodecs cannot read from this export (it points "
                << "at the stored bytes; `refzarr serve` and `refzarr mount` transcode them):\n";
      }
      // One line per array and codec, "note: <array>: ...": scripts take the array from it.
      for (const ForeignCodec& f : report->foreign_codecs) {
        ctx.err << "note: " << f.array << ": codec " << f.codec << " is not in numcodecs; "
                << (f.library == "none" ? "no library implements it"
                                        : "it is implemented by " + f.library)
                << " (library: " << f.library << ")\n";
      }
      for (const std::string& a : report->notes) ctx.err << "note: " << a << "\n";
      return OkStatus();
    }();
    if (!st.ok()) {
      ctx.err << "refzarr: export: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
