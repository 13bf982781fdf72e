"""A process of a legacy system that keeps its state in SysV shared memory (through libc,
as such programs do), for tests of [tend.shm].

    shm.py create KEY TEXT   make a 4096-byte segment KEY holding TEXT, then wait
    shm.py read KEY          print "read: TEXT" (or "missing"), then wait
"""
import ctypes
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
IPC_CREAT = 0o1000
SHM_RDONLY = 0o10000


def main():
    command, key = sys.argv[1], int(sys.argv[2], 0)
    if command == "create":
        text = sys.argv[3].encode() + b"\0"
        shmid = libc.shmget(key, 4096, IPC_CREAT | 0o600)
        if shmid < 0:
            sys.exit("shmget: errno %d" % ctypes.get_errno())
        addr = libc.shmat(shmid, None, 0)
        ctypes.memmove(addr, text, len(text))
        print("created", flush=True)
    elif command == "read":
        shmid = libc.shmget(key, 0, 0)
        if shmid < 0:
            print("missing", flush=True)
        else:
            addr = libc.shmat(shmid, None, SHM_RDONLY)
            print("read: " + ctypes.string_at(addr).decode(), flush=True)
    time.sleep(1000)


main()
