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
  libxml2-utils \
  libisal-dev python3-crcmod \
  nettle-dev \
  clang-14 libclang-rt-14-dev

.PHONY: deps build demo test bench clean fuzz fuzz-build fuzz-regression test-sanitize

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

# ---- Hardening (docs/fuzzing.md): libFuzzer targets and the sanitizer build ----
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
SANITIZE_BUILD ?= build-asan
# The sanitizers' run-time options for every process of the suite (tests, the refzarr binary the
# end-to-end tests start, its modules): stop at the first finding, report leaks, full stacks.
# Suppressions (tests/sanitize/*.supp) each say why; full unwinding at malloc lets the one LSan
# suppression (a libhdf5 filter plugin's constructor) match its stack.
SANITIZE_ENV = ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0:fast_unwind_on_malloc=0 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitize/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(CURDIR)/tests/sanitize/ubsan.supp
# Labels test-sanitize may leave out to fit a time budget, as a ctest -LE regex (e.g. "slurm");
# empty (the default): the whole suite.
SANITIZE_EXCLUDE_LABELS ?=
SANITIZE_TIMEOUT ?= 1200

# The fuzz targets with clang's libFuzzer, ASan and UBSan (every library instrumented).
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREFZARR_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# Each target for FUZZ_SECONDS (default 60) from its corpus; fails on any crash, leak, hang or OOM.
fuzz: fuzz-build
	tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Each target once over its regression corpus (tests/fuzz/<name>/), under libFuzzer.
fuzz-regression: fuzz-build
	cd $(FUZZ_BUILD) && ctest -L fuzz --output-on-failure -j $(JOBS)

# Everything built with ASan + UBSan, and the ctest suite under it.
test-sanitize: deps
	cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREFZARR_SANITIZE=ON >/dev/null
	cmake --build $(SANITIZE_BUILD) -j $(JOBS)
	cd $(SANITIZE_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) \
	  --timeout $(SANITIZE_TIMEOUT) $(if $(SANITIZE_EXCLUDE_LABELS),-LE '$(SANITIZE_EXCLUDE_LABELS)')

clean:
	rm -rf $(BUILD)
