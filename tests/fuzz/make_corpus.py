#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""make_corpus.py -- writes the seed corpus of the fuzz targets

    python3 tests/fuzz/make_corpus.py [OUTDIR]   (default: tests/fuzz/corpus)

The inputs are small descriptions (see the FORMAT comments at the top of
fuzz_pool_open.c and fuzz_names.c), not pool images: the base images are
made by the library at fuzzer start and patch offsets are relative to
anchors found in them, so these seeds stay meaningful when the on-media
format changes. The offsets into libpmemobj's structures follow PMDK
1.12's layout (pool header, lanes, heap header, zone and chunk headers).
"""
import os
import struct
import sys

# fuzz_pool_open anchors (file bit 0: pmem)
ZERO, LAYOUT, LANES, HEAP, ZONE0, CHUNKS, SUPER, OBJ0, OBJ1, NAME0, \
    NAME1, ENTRIES, ENTRY_USED, DATA, END = range(15)
# block file anchors (file bit 1)
BHDR, BDATA, BUSED, BEND = range(4)
BLOCK = 8  # the file bit in the op byte

SET, FILL, XOR, SET64, TRUNC, ADD, SET32, ZEROS = range(8)


def op(kind, anchor, off, file_bit=0):
    return bytes([kind | file_bit | anchor << 4]) + struct.pack('<i', off)


def p_set(anchor, off, data, blk=0):
    return op(SET, anchor, off, blk) + bytes([len(data)]) + data


def p_fill(anchor, off, n, v, blk=0):
    return op(FILL, anchor, off, blk) + struct.pack('<HB', n, v)


def p_xor(anchor, off, mask=0xff, blk=0):
    return op(XOR, anchor, off, blk) + bytes([mask])


def p_set64(anchor, off, v, blk=0):
    return op(SET64, anchor, off, blk) + struct.pack('<Q', v & (2**64 - 1))


def p_set32(anchor, off, v, blk=0):
    return op(SET32, anchor, off, blk) + struct.pack('<I', v & (2**32 - 1))


def p_trunc(anchor, off, blk=0):
    return op(TRUNC, anchor, off, blk)


def p_add(anchor, off, d, blk=0):
    return op(ADD, anchor, off, blk) + bytes([d & 0xff])


def p_zero(anchor, off, n, blk=0):
    return op(ZEROS, anchor, off, blk) + struct.pack('<H', n)


def pool_open_seeds():
    s = {}
    for b in range(5):
        s[f'base{b}-unchanged'] = bytes([b])
    for b in (0, 1):
        pre = bytes([b])
        # libpmemobj pool header (4 KiB at 0): signature, major, checksum
        s[f'b{b}-poolhdr-signature'] = pre + p_xor(ZERO, 0)
        s[f'b{b}-poolhdr-major'] = pre + p_add(ZERO, 8, 1)
        s[f'b{b}-poolhdr-checksum'] = pre + p_xor(ZERO, 4088, 0x01)
        s[f'b{b}-poolhdr-uuid'] = pre + p_xor(ZERO, 24, 0x10)
        s[f'b{b}-poolhdr-zero'] = pre + p_zero(ZERO, 0, 4096)
        # the layout name: format, size, uuid, block path
        s[f'b{b}-layout-fmt'] = pre + p_set(LAYOUT, 8, b'fmt=2')
        s[f'b{b}-layout-size'] = pre + p_set(LAYOUT, 14, b'size=9')
        s[f'b{b}-layout-cut'] = pre + p_set(LAYOUT, 20, b'\0')
        s[f'b{b}-layout-uuid'] = pre + p_xor(LAYOUT, 40, 0x01)
        # pool descriptor after the layout: lanes_offset, nlanes,
        # heap_offset, then its checksum; root_offset after that
        s[f'b{b}-desc-lanes-off'] = pre + p_set64(LAYOUT, 1024, 1 << 40)
        s[f'b{b}-desc-nlanes'] = pre + p_set64(LAYOUT, 1032, 0)
        s[f'b{b}-desc-heap-off'] = pre + p_add(LAYOUT, 1041, 1)
        s[f'b{b}-desc-root-off'] = pre + p_xor(LAYOUT, 1024 + 2024, 0x40)
        # lanes: lane 0's undo/redo log headers, many lanes at once
        s[f'b{b}-lane0-fill'] = pre + p_fill(LANES, 0, 1024, 0xff)
        s[f'b{b}-lane0-redo'] = pre + p_set64(LANES, 0, 0xffffffff)
        s[f'b{b}-lane0-xor'] = pre + p_xor(LANES, 8, 0x80) + \
            p_xor(LANES, 1024 + 8, 0x80)
        s[f'b{b}-lanes-random'] = pre + b''.join(
            p_set64(LANES, 3072 * i + 64 * (i % 5), 0x1000 * i + 7)
            for i in range(8))
        # heap header, zone 0 header (magic, size_idx), chunk headers
        s[f'b{b}-heap-signature'] = pre + p_xor(HEAP, 0)
        s[f'b{b}-heap-chunksize'] = pre + p_set64(HEAP, 40, 4096)
        s[f'b{b}-heap-zero'] = pre + p_zero(HEAP, 0, 1024)
        s[f'b{b}-zone0-magic'] = pre + p_set32(ZONE0, 0, 0)
        s[f'b{b}-zone0-sizeidx'] = pre + p_set32(ZONE0, 4, 0xffffffff)
        s[f'b{b}-zone0-sizeidx0'] = pre + p_set32(ZONE0, 4, 1)
        for i, v in enumerate((0, 0xffffffff00000001, 0x0000000100020001,
                               0x7fffffff00010003, 0x0000ffff00000002)):
            s[f'b{b}-chunk0-{i}'] = pre + p_set64(CHUNKS, 0, v)
            s[f'b{b}-chunk2-{i}'] = pre + p_set64(CHUNKS, 16, v)
        s[f'b{b}-chunks-fill'] = pre + p_fill(CHUNKS, 0, 512, 0x41)
        s[f'b{b}-chunks-zero'] = pre + p_zero(CHUNKS, 8, 256)
        # the superblock (libpmemobj root object) and its alloc header
        s[f'b{b}-super-magic'] = pre + p_xor(SUPER, 0)
        s[f'b{b}-super-csum'] = pre + p_xor(SUPER, 1096, 0x01)
        s[f'b{b}-super-nextid'] = pre + p_set64(SUPER, 1104, 0)
        s[f'b{b}-super-nextserial'] = pre + p_set64(SUPER, 1112, 1)
        s[f'b{b}-super-entries'] = pre + p_set64(SUPER, 104, 64)
        s[f'b{b}-super-allochdr'] = pre + p_xor(SUPER, -16, 0x01)
        s[f'b{b}-super-allochdr-size'] = pre + p_set64(SUPER, -16, 1 << 50)
        # object records: id, serial, size, and their alloc headers
        s[f'b{b}-obj0-size-max'] = pre + p_set64(OBJ0, 24, 1 << 43)
        s[f'b{b}-obj0-size-over'] = pre + p_set64(OBJ0, 24, (1 << 43) + 1)
        s[f'b{b}-obj0-size-big'] = pre + p_set64(OBJ0, 24, 1 << 33)
        s[f'b{b}-obj0-size-0'] = pre + p_set64(OBJ0, 24, 0)
        s[f'b{b}-obj0-serial-0'] = pre + p_set64(OBJ0, 16, 0)
        s[f'b{b}-obj0-serial-inc'] = pre + p_add(OBJ0, 16, 1)
        s[f'b{b}-obj0-id-0'] = pre + p_set64(OBJ0, 8, 0)
        s[f'b{b}-obj1-dup'] = pre + p_set64(OBJ1, 8, 1) + \
            p_set64(OBJ1, 0, 0)
        s[f'b{b}-obj0-allochdr'] = pre + p_xor(OBJ0, -16, 0x01)
        s[f'b{b}-obj0-allochdr-type'] = pre + p_set64(OBJ0, -8, 2)
        s[f'b{b}-obj0-allochdr-size'] = pre + p_set64(OBJ0, -16, 1 << 40)
        s[f'b{b}-obj0-allochdr-zero'] = pre + p_zero(OBJ0, -16, 16)
        s[f'b{b}-obj1-allochdr-flags'] = pre + p_xor(OBJ1, -9, 0xc0)
        # name records: len, NUL, name bytes, alloc header
        s[f'b{b}-name0-len-huge'] = pre + p_set32(NAME0, 16, 0xffffffff)
        s[f'b{b}-name0-len-0'] = pre + p_set32(NAME0, 16, 0)
        s[f'b{b}-name0-len-inc'] = pre + p_add(NAME0, 16, 1)
        s[f'b{b}-name0-nul'] = pre + p_set(NAME0, 24, b'\0')
        s[f'b{b}-name0-bytes'] = pre + p_set(NAME0, 24, b'\xff\xfe')
        s[f'b{b}-name0-oid'] = pre + p_set64(NAME0, 8, 12345)
        s[f'b{b}-name1-same'] = pre + p_set(NAME1, 24, b'a\0')
        s[f'b{b}-name0-allochdr'] = pre + p_set64(NAME0, -16, 7)
        # the entry table: serial, ext_index, frame, slot, crc, state
        s[f'b{b}-entry-serial'] = pre + p_add(ENTRY_USED, 0, 1)
        s[f'b{b}-entry-serial-0'] = pre + p_set64(ENTRY_USED, 0, 0)
        s[f'b{b}-entry-ext'] = pre + p_set32(ENTRY_USED, 8, 0xfffffffe)
        s[f'b{b}-entry-frame'] = pre + p_set32(ENTRY_USED, 12, 0xffffffff)
        s[f'b{b}-entry-frame-1'] = pre + p_add(ENTRY_USED, 12, 1)
        s[f'b{b}-entry-slot'] = pre + p_set32(ENTRY_USED, 16, 0x7fffffff)
        s[f'b{b}-entry-crc'] = pre + p_xor(ENTRY_USED, 20, 0x01)
        for st in (0, 1, 2, 3, 4, 0xff):
            s[f'b{b}-entry-state-{st}'] = pre + \
                p_set(ENTRY_USED, 24, bytes([st]))
        s[f'b{b}-entry-dup'] = pre + p_set(ENTRY_USED, 32, b'\x01')
        s[f'b{b}-entries-ff'] = pre + p_fill(ENTRIES, 0, 256, 0xff)
        s[f'b{b}-entries-allochdr'] = pre + p_set64(ENTRIES, -16, 64)
        # the data area (pmem-resident bytes) and its alloc header
        s[f'b{b}-data-byte'] = pre + p_xor(DATA, 100, 0x01)
        s[f'b{b}-data-allochdr'] = pre + p_set64(DATA, -16, 4096)
        # the end of the pmem file, its size
        s[f'b{b}-pmem-trunc'] = pre + p_trunc(END, -4096)
        s[f'b{b}-pmem-trunc-half'] = pre + p_trunc(ZERO, 8 << 20)
        s[f'b{b}-pmem-grow'] = pre + p_trunc(END, 4096 - (1 << 31))
        # the block file: header fields, truncation, slot bytes
        s[f'b{b}-bhdr-magic'] = pre + p_xor(BHDR, 0, blk=BLOCK)
        s[f'b{b}-bhdr-format'] = pre + p_add(BHDR, 8, 1, blk=BLOCK)
        s[f'b{b}-bhdr-csum'] = pre + p_xor(BHDR, 124, 1, blk=BLOCK)
        s[f'b{b}-bhdr-uuid'] = pre + p_xor(BHDR, 16, 1, blk=BLOCK)
        s[f'b{b}-bhdr-nslots'] = pre + p_set64(BHDR, 56, 1 << 40,
                                               blk=BLOCK)
        s[f'b{b}-block-trunc'] = pre + p_trunc(BDATA, 0, blk=BLOCK)
        s[f'b{b}-block-trunc-slot'] = pre + p_trunc(BEND, -4096, blk=BLOCK)
        s[f'b{b}-block-empty'] = pre + p_trunc(BHDR, 0, blk=BLOCK)
        s[f'b{b}-slot-byte'] = pre + p_xor(BUSED, 0, 0x01, blk=BLOCK)
        s[f'b{b}-slot-page'] = pre + p_zero(BUSED, 4096, 4096, blk=BLOCK)
        s[f'b{b}-slot-fill'] = pre + p_fill(BUSED, 0, 16384, 0, blk=BLOCK)
    for b in (2, 3, 4):
        pre = bytes([b])
        s[f'b{b}-lane0-xor'] = pre + p_xor(LANES, 8, 0x80)
        s[f'b{b}-lanes-fill'] = pre + p_fill(LANES, 0, 4096, 0x11)
        s[f'b{b}-entry-state'] = pre + p_set(ENTRY_USED, 24, b'\x03')
        s[f'b{b}-obj0-size'] = pre + p_set64(OBJ0, 24, 1 << 30)
        s[f'b{b}-chunk0'] = pre + p_set64(CHUNKS, 0, 0xffffffff00000001)
    return s


# --- fuzz_names ------------------------------------------------------------
BIND, LOOKUP, UNBIND, RENAME, LIST, LISTALL, REOPEN, LOOKUPALL = range(8)


def nop(kind, obj=0, bound=False):
    return bytes([kind | obj << 3 | (0x20 if bound else 0)])


def nm(b):
    return struct.pack('<H', len(b)) + b


def names_seeds():
    s = {}
    s['bind-lookup-unbind'] = nop(BIND) + nm(b'a') + nop(LOOKUP) + \
        nm(b'a') + nop(UNBIND) + nm(b'a') + nop(LOOKUP) + nm(b'a')
    s['bind-twice'] = nop(BIND) + nm(b'dir/x') + nop(BIND, 1) + nm(b'dir/x')
    s['bind-missing-obj'] = nop(BIND, 3) + nm(b'nobody')
    s['empty'] = nop(BIND) + nm(b'') + nop(LOOKUP) + nm(b'') + \
        nop(UNBIND) + nm(b'')
    s['embedded-nul'] = nop(BIND) + nm(b'ab\0cd') + nop(LOOKUP) + \
        nm(b'ab') + nop(LOOKUP) + nm(b'ab\0xx')
    s['invalid-utf8'] = nop(BIND, 2) + nm(b'\xff\xfe\xc3(') + \
        nop(LIST) + nm(b'\xff') + nop(LISTALL)
    s['max-len'] = nop(BIND) + nm(b'x' * 4095) + nop(LOOKUP) + \
        nm(b'x' * 4095) + nop(LIST) + nm(b'x' * 4000)
    s['too-long'] = nop(BIND) + nm(b'y' * 4096) + nop(LOOKUP) + \
        nm(b'y' * 4096) + nop(LIST) + nm(b'y' * 4096)
    s['rename'] = nop(BIND) + nm(b'from') + nop(BIND, 1) + nm(b'to') + \
        nop(RENAME) + nm(b'from') + nm(b'to') + nop(LOOKUPALL)
    s['rename-self'] = nop(BIND) + nm(b'same') + nop(RENAME) + \
        nm(b'same') + nm(b'same')
    s['rename-unbound'] = nop(RENAME) + nm(b'none') + nm(b'other')
    s['rename-bound'] = nop(BIND, 2) + nm(b'p/q') + \
        nop(RENAME, 0, True) + b'\0' + nm(b'p/r')
    s['prefixes'] = nop(BIND) + nm(b'a/b') + nop(BIND) + nm(b'a/c') + \
        nop(BIND) + nm(b'ab') + nop(LIST) + nm(b'a/') + nop(LIST) + \
        nm(b'a') + nop(LIST) + nm(b'')
    s['reopen'] = nop(BIND) + nm(b'kept') + nop(BIND, 1) + \
        nm(b'\xe2\x82\xac/euro') + nop(REOPEN) + nop(UNBIND, 0, True) + \
        b'\0' + nop(REOPEN)
    s['many'] = b''.join(nop(BIND, i % 3) + nm(b'n%03d' % i)
                         for i in range(40)) + nop(LISTALL)
    return s


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus')
    for target, seeds in (('fuzz_pool_open', pool_open_seeds()),
                          ('fuzz_names', names_seeds())):
        d = os.path.join(top, target)
        # seeds that crash the library today live in regress/ (see its
        # README.md) until the bug is fixed: not written again here
        known = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'regress', target)
        skip = set(os.listdir(known)) if os.path.isdir(known) else set()
        os.makedirs(d, exist_ok=True)
        n = 0
        for name, data in seeds.items():
            if name in skip:
                continue
            with open(os.path.join(d, name), 'wb') as f:
                f.write(data)
            n += 1
        print(f'{d}: {n} inputs ({len(seeds) - n} in regress/)')


if __name__ == '__main__':
    main()
