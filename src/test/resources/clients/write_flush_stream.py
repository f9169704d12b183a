#!/usr/bin/python3
"""A real NBD client (libnbd) for crash tests.

write URI SALT: writes rounds of 16 x 4 KiB blocks at increasing offsets; every 4th round is written
with FUA instead of being followed by FLUSH. After each FLUSH or FUA write returns it prints
"durable R" (every round <= R must survive a crash). Runs until killed or the volume is full.

verify URI SALT DURABLE: checks that every round <= DURABLE reads back exactly; rounds after it may
hold the new pattern or zeroes, but never other bytes and never a read error. Exit 0 on success.
"""
import hashlib
import sys

import nbd

BLOCK = 4096
BLOCKS_PER_ROUND = 16


def pattern(salt, round_no, block_no):
    # The salt makes each run's bytes differ, so a crash test repeated on one volume cannot be
    # fooled by data an earlier run left behind.
    seed = hashlib.sha256(b"%s:%d:%d" % (salt.encode(), round_no, block_no)).digest()
    return (seed * (BLOCK // len(seed)))[:BLOCK]


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def write(uri, salt):
    h = connect(uri)
    rounds = h.get_size() // (BLOCK * BLOCKS_PER_ROUND)
    for r in range(rounds):
        base = r * BLOCKS_PER_ROUND
        fua = r % 4 == 3
        for b in range(BLOCKS_PER_ROUND):
            flags = nbd.CMD_FLAG_FUA if fua else 0
            h.pwrite(pattern(salt, r, b), (base + b) * BLOCK, flags)
        if not fua:
            h.flush()
        print("durable %d" % r, flush=True)
    print("full", flush=True)


def verify(uri, salt, durable):
    h = connect(uri)
    rounds = h.get_size() // (BLOCK * BLOCKS_PER_ROUND)
    zero = bytes(BLOCK)
    bad = 0
    for r in range(rounds):
        base = r * BLOCKS_PER_ROUND
        data = h.pread(BLOCK * BLOCKS_PER_ROUND, base * BLOCK)
        for b in range(BLOCKS_PER_ROUND):
            got = data[b * BLOCK:(b + 1) * BLOCK]
            want = pattern(salt, r, b)
            if r <= durable and got != want:
                print("LOST round %d block %d" % (r, b))
                bad += 1
            elif r > durable and got != want and got != zero:
                print("GARBAGE round %d block %d" % (r, b))
                bad += 1
        if r > durable + 64 and data == zero * BLOCKS_PER_ROUND:
            break
    print("verified through round %d, %d bad blocks" % (durable, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    else:
        sys.exit(verify(sys.argv[2], sys.argv[3], int(sys.argv[4])))
