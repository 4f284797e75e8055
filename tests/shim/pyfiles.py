#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""pyfiles.py ROOT -- Python's file calls on ROOT, for tests/shim/programs.sh

Runs open() (text and binary), os.* (listdir, scandir, makedirs, rename,
replace, remove, rmdir, stat, walk, open/pread/pwrite/ftruncate/fsync,
chdir), shutil (copyfile, copy, copy2, copytree, move, rmtree) and tempfile
(NamedTemporaryFile, mkstemp, mkdtemp, TemporaryDirectory) on files under
ROOT (an existing, empty directory), and prints what they did: results,
sizes, sha256 sums and errno names, never times, inode numbers or the random
names of temporary files. So the output is the same on any two correct file
systems: programs.sh compares a run under the shim with one on an ordinary
directory. Every step runs even when one before it failed.
"""
import errno
import hashlib
import os
import random
import shutil
import stat
import sys
import tempfile

ROOT = ""


def p(*parts):
    """A path under ROOT."""
    return os.path.join(ROOT, *parts)


def rel(path):
    return os.path.relpath(path, ROOT)


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


def file_sha(path):
    with open(path, "rb") as f:
        return sha(f.read())


def err(e):
    """An OSError as its class and errno name (no paths, no strerror)."""
    name = errno.errorcode.get(e.errno, str(e.errno))
    return "%s(%s)" % (type(e).__name__, name)


def expect_error(label, fn, *args, **kw):
    """Runs fn, which should fail; prints how it failed."""
    try:
        r = fn(*args, **kw)
        print("%s: no error (returned %r)" % (label, r))
    except OSError as e:
        print("%s: %s" % (label, err(e)))


STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


def kind(st):
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other(%o)" % stat.S_IFMT(st.st_mode)


def describe(path):
    """What os.stat says about path: type, permissions, size of a file."""
    st = os.stat(path)
    s = "%s %s %04o" % (rel(path), kind(st), stat.S_IMODE(st.st_mode))
    if stat.S_ISREG(st.st_mode):
        s += " %d" % st.st_size
    return s


# deterministic binary data: 1 MiB and a bit
DATA = random.Random(20240501).randbytes(1024 * 1024 + 77)


@step
def makedirs():
    os.makedirs(p("a", "b", "c"))
    os.makedirs(p("a", "b", "c"), exist_ok=True)
    expect_error("makedirs existing", os.makedirs, p("a", "b"))
    os.mkdir(p("a", "m"))
    expect_error("mkdir existing", os.mkdir, p("a", "m"))
    expect_error("mkdir without parent", os.mkdir, p("no", "such"))
    for d in ("a", "a/b", "a/b/c", "a/m"):
        print(describe(p(d)))


@step
def text_files():
    lines = ["first line\n", "zweite Zeile: äöü ß\n", "third ✓\n"]
    with open(p("a", "hello.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)
        print("text written, tell", f.tell())
    with open(p("a", "hello.txt"), encoding="utf-8") as f:
        print("read back equal:", f.readlines() == lines)
    with open(p("a", "hello.txt"), "a", encoding="utf-8") as f:
        f.write("appended\n")
    with open(p("a", "hello.txt"), encoding="utf-8") as f:
        first = f.readline()
        where = f.tell()
        rest = f.read()
        f.seek(where)
        print("readline", repr(first), "seek/tell consistent:",
              f.read() == rest, "lines", 1 + rest.count("\n"))
    with open(p("a", "crlf.txt"), "w", newline="\r\n") as f:
        f.write("one\ntwo\n")
    with open(p("a", "crlf.txt"), "rb") as f:
        print("newline translation:", f.read())
    print(describe(p("a", "hello.txt")))


@step
def binary_files():
    path = p("a", "data.bin")
    with open(path, "wb") as f:
        pos, n = 0, 1
        while pos < len(DATA):  # writes of 1, 2, 4 ... 64K bytes
            f.write(DATA[pos:pos + n])
            pos += n
            n = min(n * 2, 65536)
    print("binary written:", os.path.getsize(path), file_sha(path))
    with open(path, "rb") as f:
        print("whole read equal:", f.read() == DATA)
        f.seek(1000)
        print("seek 1000 read 10 equal:", f.read(10) == DATA[1000:1010])
        f.seek(-77, os.SEEK_END)
        print("tail equal:", f.read() == DATA[-77:], "tell", f.tell())
    with open(path, "r+b") as f:
        f.seek(5000)
        f.write(b"X" * 3000)
        f.truncate(700001)
    want = DATA[:5000] + b"X" * 3000 + DATA[8000:700001]
    print("r+b overwrite and truncate:", os.path.getsize(path),
          file_sha(path) == sha(want))
    with open(path, "rb", buffering=0) as f:  # raw FileIO
        buf = bytearray(4096)
        n = f.readinto(buf)
        print("readinto", n, bytes(buf) == want[:4096])
    with open(path, "ab") as f:
        f.write(b"tail")
    print("append:", os.path.getsize(path))


@step
def exclusive_and_errors():
    with open(p("a", "x.txt"), "x") as f:
        f.write("exclusive\n")
    expect_error("open x existing", open, p("a", "x.txt"), "x")
    expect_error("open missing", open, p("a", "missing"))
    expect_error("open directory", open, p("a"))
    expect_error("open in missing dir", open, p("nodir", "f"), "w")
    expect_error("open file as dir", open, p("a", "x.txt", "f"))
    expect_error("stat missing", os.stat, p("missing"))


@step
def low_level():
    path = p("a", "low.bin")
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    print("write", os.write(fd, DATA[:10000]))
    print("pwrite", os.pwrite(fd, b"P" * 100, 20000))  # leaves a hole
    print("lseek end", os.lseek(fd, 0, os.SEEK_END))
    print("pread hole", os.pread(fd, 100, 15000) == b"\0" * 100)
    print("pread data", os.pread(fd, 100, 20000) == b"P" * 100)
    os.ftruncate(fd, 12345)
    os.fsync(fd)
    print("fstat after ftruncate", os.fstat(fd).st_size)
    os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"appended")  # O_APPEND: at the end all the same
    print("O_APPEND offset", os.lseek(fd, 0, os.SEEK_CUR))
    os.close(fd)
    os.truncate(path, 20000)
    with open(path, "rb") as f:
        d = f.read()
    print("low-level content:", len(d),
          d == DATA[:10000] + b"\0" * 2345 + b"appended" +
          b"\0" * (20000 - 12353))


@step
def listing():
    for i in range(20):
        with open(p("a", "b", "f%02d" % i), "wb") as f:
            f.write(DATA[:i * 100])
    print("listdir a:", sorted(os.listdir(p("a"))))
    print("listdir a/b:", sorted(os.listdir(p("a", "b"))))
    with os.scandir(p("a")) as it:
        ents = sorted((e.name, e.is_dir(), e.is_file(),
                       e.stat().st_size if e.is_file() else -1) for e in it)
    print("scandir a:", ents)
    expect_error("listdir missing", os.listdir, p("missing"))
    expect_error("listdir file", os.listdir, p("a", "x.txt"))
    print("exists/isfile/isdir:", os.path.exists(p("a", "x.txt")),
          os.path.isfile(p("a", "x.txt")), os.path.isdir(p("a")),
          os.path.exists(p("nope")), os.path.isdir(p("a", "x.txt")))


@step
def renames():
    os.rename(p("a", "x.txt"), p("a", "y.txt"))
    with open(p("a", "z.txt"), "w") as f:
        f.write("zzz\n")
    os.rename(p("a", "y.txt"), p("a", "z.txt"))  # over a file
    with open(p("a", "z.txt")) as f:
        print("rename over a file:", repr(f.read()))
    with open(p("a", "r1"), "w") as f:
        f.write("one\n")
    with open(p("a", "r2"), "w") as f:
        f.write("two\n")
    os.replace(p("a", "r1"), p("a", "r2"))
    with open(p("a", "r2")) as f:
        print("replace:", repr(f.read()), os.path.exists(p("a", "r1")))
    os.makedirs(p("d1", "sub"))
    with open(p("d1", "sub", "f"), "w") as f:
        f.write("in d1\n")
    os.rename(p("d1"), p("d2"))  # a directory
    print("renamed dir:", sorted(os.listdir(p("d2", "sub"))),
          os.path.exists(p("d1")))
    os.mkdir(p("empty"))
    os.rename(p("d2"), p("empty"))  # over an empty directory
    print("over an empty dir:", sorted(os.listdir(p("empty"))))
    os.mkdir(p("full"))
    with open(p("full", "x"), "w"):
        pass
    expect_error("rename over non-empty dir", os.rename, p("empty"),
                 p("full"))
    expect_error("rename file over dir", os.rename, p("a", "z.txt"),
                 p("full"))
    expect_error("rename dir over file", os.rename, p("full"),
                 p("a", "z.txt"))
    expect_error("rename into itself", os.rename, p("full"),
                 p("full", "inner"))
    expect_error("rename missing", os.rename, p("missing"), p("m2"))


@step
def removals():
    os.remove(p("full", "x"))
    os.rmdir(p("full"))
    print("removed:", os.path.exists(p("full")))
    expect_error("remove directory", os.remove, p("a"))
    expect_error("rmdir non-empty", os.rmdir, p("a"))
    expect_error("rmdir file", os.rmdir, p("a", "z.txt"))
    expect_error("remove missing", os.remove, p("missing"))
    os.unlink(p("a", "r2"))


@step
def shutil_calls():
    shutil.copyfile(p("a", "data.bin"), p("a", "copy.bin"))
    print("copyfile:", file_sha(p("a", "copy.bin")) ==
          file_sha(p("a", "data.bin")))
    shutil.copy(p("a", "hello.txt"), p("a", "b"))
    shutil.copy2(p("a", "hello.txt"), p("a", "hello2.txt"))
    print("copy, copy2:", file_sha(p("a", "b", "hello.txt")),
          file_sha(p("a", "hello2.txt")))
    with open(p("a", "data.bin"), "rb") as s, \
            open(p("a", "obj.bin"), "wb") as d:
        shutil.copyfileobj(s, d, 10000)
    print("copyfileobj:", file_sha(p("a", "obj.bin")))
    shutil.copytree(p("a"), p("tree"))
    print("copytree:", sorted(os.listdir(p("tree"))))
    expect_error("copytree onto existing", shutil.copytree, p("a"),
                 p("tree"))
    shutil.move(p("tree", "b"), p("moved-b"))
    print("move:", sorted(os.listdir(p("moved-b")))[:3])
    shutil.rmtree(p("moved-b"))
    print("rmtree:", os.path.exists(p("moved-b")))
    shutil.rmtree(p("tree"))
    print("rmtree tree:", os.path.exists(p("tree")))
    expect_error("rmtree missing", shutil.rmtree, p("tree"))


@step
def temp_files():
    with tempfile.NamedTemporaryFile(dir=ROOT, prefix="ntf") as f:
        f.write(DATA[:50000])
        f.flush()
        f.seek(0)
        print("NamedTemporaryFile: read back", f.read() == DATA[:50000],
              "exists", os.path.exists(f.name),
              "in root", os.path.dirname(f.name) == ROOT)
        name = f.name
    print("NamedTemporaryFile gone after close:", not os.path.exists(name))
    with tempfile.NamedTemporaryFile("w", dir=ROOT, delete=False,
                                     suffix=".txt") as f:
        f.write("kept\n")
    os.replace(f.name, p("from-ntf.txt"))
    fd, path = tempfile.mkstemp(dir=ROOT, suffix=".tmp", prefix="mk")
    os.write(fd, b"from mkstemp\n")
    os.fsync(fd)
    os.close(fd)
    print("mkstemp: size", os.path.getsize(path),
          "name", os.path.basename(path).startswith("mk"))
    os.replace(path, p("from-mkstemp"))
    d = tempfile.mkdtemp(dir=ROOT)
    with open(os.path.join(d, "inside"), "w") as f:
        f.write("x")
    print("mkdtemp:", kind(os.stat(d)), os.listdir(d))
    shutil.rmtree(d)
    with tempfile.TemporaryDirectory(dir=ROOT) as td:
        os.makedirs(os.path.join(td, "x", "y"))
        with open(os.path.join(td, "x", "y", "z"), "wb") as f:
            f.write(DATA[:3000])
        print("TemporaryDirectory:", sorted(os.listdir(td)))
    print("TemporaryDirectory gone:", not os.path.exists(td))
    left = [n for n in os.listdir(ROOT)
            if n.startswith(("ntf", "mk", "tmp"))]
    print("temporary names left in root:", left)


@step
def cwd_inside():
    old = os.getcwd()
    os.chdir(p("a"))
    try:
        print("getcwd is a:", os.getcwd() == p("a"))
        with open("relative.txt", "w") as f:
            f.write("relative\n")
        os.mkdir("reldir")
        os.rename("relative.txt", os.path.join("reldir", "r.txt"))
        print("relative:", sorted(os.listdir("reldir")),
              os.path.exists(os.path.join("..", "a", "reldir", "r.txt")))
    finally:
        os.chdir(old)


@step
def walk():
    for top, dirs, files in os.walk(ROOT):
        dirs.sort()
        print("walk", rel(top), dirs,
              [(n, os.stat(os.path.join(top, n)).st_size)
               for n in sorted(files)])
    n = sum(len(f) + len(d) for _, d, f in os.walk(ROOT, topdown=False))
    print("walk bottom-up entries:", n)


@step
def summary():
    for top, dirs, files in os.walk(ROOT):
        dirs.sort()
        for n in sorted(files):
            path = os.path.join(top, n)
            print("file", rel(path), os.path.getsize(path), file_sha(path))
        for n in dirs:
            print(describe(os.path.join(top, n)))


def main():
    global ROOT
    if len(sys.argv) != 2:
        print("usage: pyfiles.py ROOT", file=sys.stderr)
        return 2
    ROOT = os.path.abspath(sys.argv[1])
    os.umask(0o022)
    failures = 0
    for fn in STEPS:
        print("--", fn.__name__)
        try:
            fn()
        except Exception as e:  # the next steps run all the same
            failures += 1
            what = err(e) if isinstance(e, OSError) else repr(e)
            print("step %s failed: %s" % (fn.__name__, what))
    print("--", failures, "steps failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
