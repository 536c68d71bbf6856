# eddy: build, test, bench and install.
#
#   make run        build and run examples/hello.lua
#   make test       build and run every test
#   make test-asan  the same, built with AddressSanitizer and UBSan
#   make bench      benchmarks against baselines (see BENCHMARKS.md)
#
# `make run` and `make test` first install the Debian packages they need
# (scripts/deps.sh says what it installs and why).

CC ?= gcc
BUILD ?= build
PKGS := luajit libuv libcares libcurl libmariadb hiredis openssl sqlite3
OPT ?= -O2 -g
SAN ?=
LUAJIT ?= luajit

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# eddy.so is loaded into a luajit process: it must not carry its own LuaJIT.
MOD_LIBS = $(shell pkg-config --libs libuv libcares libcurl libmariadb hiredis openssl sqlite3 2>/dev/null) -lpthread -lm

CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC \
  -fvisibility=hidden $(OPT) $(SAN) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(SAN) $(LDFLAGS)

CORE_SRC := $(wildcard core/*.c)
BIND_SRC := $(wildcard bindings/*.c)
LUA_SRC := $(sort $(wildcard lua/eddy/*.lua lua/eddy/*/*.lua))
GEN_SRC := $(BUILD)/gen/lua_sources.c
LIB_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BIND_SRC:%.c=$(BUILD)/%.o) \
  $(BUILD)/gen/lua_sources.o
HEADERS := $(wildcard core/*.h bindings/*.h)

all: $(BUILD)/eddy $(BUILD)/libeddy.a $(BUILD)/libeddy.so $(BUILD)/eddy.so

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(GEN_SRC): scripts/embed.lua $(LUA_SRC)
	@mkdir -p $(dir $@)
	@echo "  EMBED   lua/eddy/*.lua"
	@$(LUAJIT) scripts/embed.lua $@ $(LUA_SRC)

$(BUILD)/gen/lua_sources.o: $(GEN_SRC) $(HEADERS)
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libeddy.a: $(LIB_OBJ)
	@echo "  AR      $@"
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/libeddy.so: $(LIB_OBJ)
	@echo "  LD      $@"
	@$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(PKG_LIBS) -lpthread -lm

$(BUILD)/eddy.so: $(LIB_OBJ)
	@echo "  LD      $@"
	@$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(MOD_LIBS)

# -E exports LuaJIT's API from the command, for C modules that scripts load.
$(BUILD)/eddy: $(BUILD)/cli/main.o $(BUILD)/libeddy.a
	@echo "  LD      $@"
	@$(CC) -o $@ $^ $(LDFLAGS_ALL) $(PKG_LIBS) -lpthread -lm -Wl,-E

TEST_C := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/*_test.c))

$(BUILD)/tests/%: tests/c/%.c tests/c/tap.h $(BUILD)/libeddy.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libeddy.a $(LDFLAGS_ALL) \
	  $(PKG_LIBS) -lpthread -lm

# The embedding example: a host program linked with libeddy.a.
$(BUILD)/examples/host: examples/embed/host.c $(BUILD)/libeddy.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -Icore -o $@ $< $(BUILD)/libeddy.a $(LDFLAGS_ALL) \
	  $(PKG_LIBS) -lpthread -lm

# llhttp (Debian's node-llhttp) is only a yardstick in a test: its sources
# are built here without eddy's warnings, which they do not meet.
LLHTTP_SRC := /usr/share/llhttp/llhttp.c /usr/share/llhttp/api.c /usr/share/llhttp/http.c
$(BUILD)/tests/llhttp_test: tests/c/llhttp_test.c tests/c/tap.h core/http.c core/http.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(OPT) $(SAN) -w -I/usr/share/include/llhttp -o $@ $< core/http.c \
	  $(LLHTTP_SRC) $(LDFLAGS_ALL)

tests: $(TEST_C) $(BUILD)/examples/host

# What luarocks builds and installs (rockspec/eddy-scm-1.rockspec).
rock: $(BUILD)/eddy.so $(BUILD)/eddy

install-rock: rock
	install -d $(INST_LIBDIR) $(INST_LUADIR)/eddy $(INST_BINDIR)
	install -m 644 $(BUILD)/eddy.so $(INST_LIBDIR)/eddy.so
	install -m 644 lua/eddy/*.lua $(INST_LUADIR)/eddy/
	install -m 755 $(BUILD)/eddy $(INST_BINDIR)/eddy

# A system-wide install: the command, the C library, the Lua module.
PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/lua/5.1 \
	  $(DESTDIR)$(PREFIX)/share/lua/5.1/eddy
	install -m 755 $(BUILD)/eddy $(DESTDIR)$(PREFIX)/bin/eddy
	install -m 644 $(BUILD)/libeddy.a $(BUILD)/libeddy.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 core/eddy.h $(DESTDIR)$(PREFIX)/include/eddy.h
	install -m 644 $(BUILD)/eddy.so $(DESTDIR)$(PREFIX)/lib/lua/5.1/eddy.so
	install -m 644 lua/eddy/*.lua $(DESTDIR)$(PREFIX)/share/lua/5.1/eddy/

bench: all
	bench/run.sh

# libFuzzer targets for the protocol engines (clang, with ASan and UBSan).
# `make fuzz` runs each for FUZZ_SECONDS (default 600) in parallel, growing
# the corpus kept in tests/fuzz/corpus/.
FUZZ_SECONDS ?= 600
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(BUILD)/fuzz/http_fuzz $(BUILD)/fuzz/ws_fuzz \
  $(BUILD)/fuzz/codec_fuzz

$(BUILD)/fuzz/%: tests/fuzz/%.c core/http.c core/ws.c core/codec.c \
  core/http.h core/ws.h core/codec.h
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $<"
	@clang $(FUZZ_FLAGS) -o $@ $< core/http.c core/ws.c core/codec.c

fuzz: $(FUZZ_TARGETS)
	@for t in http ws codec; do \
	  mkdir -p tests/fuzz/corpus/$$t; \
	  $(BUILD)/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 tests/fuzz/corpus/$$t \
	    > $(BUILD)/fuzz/$$t.log 2>&1 & \
	done; wait; \
	for t in http ws codec; do echo "== $$t"; tail -n 12 $(BUILD)/fuzz/$$t.log; done; \
	! grep -l "ERROR:\|==ERROR\|runtime error" $(BUILD)/fuzz/*.log

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/eddy examples/hello.lua

# The npm clients the tests use (ws, playwright-core), pinned by the lock.
tests/node/node_modules: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	@touch $@

# Every test: C tests, busted specs (examples and the rock included).
test: deps tests/node/node_modules
	@$(MAKE) --no-print-directory all tests
	@EDDY_BUILD=$(BUILD) scripts/test.sh

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
  -fno-sanitize-recover=all

test-asan: deps tests/node/node_modules
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" \
	  SAN="$(ASAN_FLAGS)" all tests
	@EDDY_BUILD=build-asan EDDY_ASAN=1 scripts/test.sh

clean:
	rm -rf build build-asan build-rock

.PHONY: all tests deps run test test-asan bench fuzz clean rock install-rock install
