#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "store/preview/thumbnail.h"

namespace refzarr {

Status WriteThumbnail(ZarrView& view, std::string_view image, const std::filesystem::path& png,
                      uint32_t size, std::ostream& out) {
  ASSIGN_OR_RETURN(Thumbnail t, RenderThumbnail(view, image, ThumbnailOptions{size}));
  ASSIGN_OR_RETURN(std::string bytes, EncodePng(t.image));
  // Written beside the target and renamed over it, so a failure leaves no half-written PNG.
  const std::filesystem::path tmp = png.string() + ".part";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return IoError("write " + png.string() + ": cannot write the file");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, png, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return IoError("write " + png.string() + ": " + ec.message());
  }
  out << png.string() << ": " << t.image.width << " x " << t.image.height << " from level "
      << t.level << " (" << t.level_width << " x " << t.level_height << "), z " << t.z << ", t "
      << t.t << "\n";
  for (const ThumbnailChannel& c : t.channels) {
    char color[8];
    std::snprintf(color, sizeof color, "%06X", c.color & 0xFFFFFF);
    out << "  " << c.label << " #" << color << " window " << c.start << " - " << c.end
        << (c.auto_contrast ? " (auto-contrast: 0.1/99.9 % of the plane)" : "") << "\n";
  }
  return OkStatus();
}

void AddThumbnailCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, image, output;
    uint32_t size = 512;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "thumbnail", "Draw an image as a PNG: its channels in their colours and display windows");
  AddRemoteFlags(cmd);
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("image", args->image, "The image's path in the tree (as `refzarr info` shows it)")
      ->required();
  cmd->add_option("-o,--output", args->output, "The PNG file to write")->required();
  cmd->add_option("--size", args->size, "Most pixels on the longer side (default 512)")
      ->check(CLI::Range(1u, 16384u));
  cmd->callback([&ctx, args] {
    Status st = [&]() -> Status {
      ViewFlags flags;  // Zarr v2, compat: chunks come in codecs DecodeNative reads
      ASSIGN_OR_RETURN(ViewOptions options, flags.ToOptions());
      ASSIGN_OR_RETURN(auto view, OpenZarrView(args->index, options));
      return WriteThumbnail(*view, args->image, args->output, args->size, ctx.out);
    }();
    if (!st.ok()) {
      ctx.err << "refzarr: thumbnail: " << args->index << ": " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
