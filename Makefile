# The README's two commands: `make demo` and `make test`. Each installs what is missing, builds, runs.
BUILD ?= build
JOBS ?= $(shell nproc)
APT_PACKAGES = cmake g++ make pkg-config libtiff-dev libhdf5-dev hdf5-tools nlohmann-json3-dev \
  libsqlite3-dev libcurl4-openssl-dev libblosc-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libfuse3-dev fuse3 libpugixml-dev libmicrohttpd-dev libcli11-dev libfmt-dev libjpeg62-turbo-dev \
  libzstd-dev libxxhash-dev zlib1g-dev liblzma-dev libdeflate-dev libwebp-dev liblzf-dev \
  hdf5-filter-plugin hdf5-filter-plugin-blosc-serial hdf5-filter-plugin-zfp-serial \
  python3 python3-numpy python3-zarr python3-numcodecs python3-fsspec python3-tifffile python3-h5py \
  python3-aiohttp python3-requests python3-jsonschema python3-gdal gdal-bin libtiff-tools \
  python3-xarray nodejs nginx-light openssl python3-botocore curl chromium slurm-wlm munge \
  python3-xxhash libpng-dev python3-pil \
  libboost-dev python3-crcmod

.PHONY: deps build demo test bench clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# npm: the build bundles serve's browser pages with it (cli/http/web), and the JS tests install
	@# their clients; Debian's package, unless Node.js came with its own (NodeSource).
	@command -v npm >/dev/null || { echo "installing: npm"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@# Not $(BUILD)/samples: that is CMake's binary folder of samples/ (it holds a test list).
	rm -rf $(BUILD)/demo-samples samples.refs.db samples.refs.db-wal samples.refs.db-shm
	$(BUILD)/bin/refzarr-samples $(BUILD)/demo-samples -q
	$(BUILD)/bin/refzarr-hdf5-samples $(BUILD)/demo-samples/hdf5 >/dev/null
	@# The samples include two deliberately damaged files: index reports them and exits 1.
	$(BUILD)/bin/refzarr index -o samples.refs.db $(BUILD)/demo-samples || test $$? -eq 1
	$(BUILD)/bin/refzarr info samples.refs.db
	$(BUILD)/bin/refzarr ls samples.refs.db
	$(BUILD)/bin/refzarr ls -r samples.refs.db ome/multiseries_2images.ome.tif
	$(BUILD)/bin/refzarr cat samples.refs.db ome/multiseries_2images.ome.tif/0/.zattrs
	@echo "to look at it in a browser: $(BUILD)/bin/refzarr serve samples.refs.db, then open http://127.0.0.1:8000/"

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	tests/bench/index_tiff_bench.sh $(BUILD) $(BUILD)/bench

clean:
	rm -rf $(BUILD)
