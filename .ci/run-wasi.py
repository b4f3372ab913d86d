#!/usr/bin/env python3
"""Cargo runner for wasm32-wasip1: `python3 .ci/run-wasi.py file.wasm args...`.

Runs the module under wasmtime's WASI preview1 (the `wasmtime` package from PyPI) with
the host file system visible at `/` (tests read tests/data/*.json by absolute path), and
exits with the module's status. A failing Rust test panics, which aborts the module
(panic=abort, a trap): the exit status is then nonzero and cargo reports the failure.
"""
import sys

from wasmtime import Engine, ExitTrap, Linker, Module, Store, WasiConfig


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: run-wasi.py <module.wasm> [args...]", file=sys.stderr)
        return 2
    engine = Engine()
    module = Module.from_file(engine, sys.argv[1])
    linker = Linker(engine)
    linker.define_wasi()
    wasi = WasiConfig()
    wasi.argv = sys.argv[1:]
    wasi.inherit_env()
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.preopen_dir("/", "/")
    store = Store(engine)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except ExitTrap as e:
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
