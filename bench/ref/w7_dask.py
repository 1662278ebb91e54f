# w7_dask.py: W7's reference, Dask distributed (Debian python3-distributed):
# a LocalCluster of 2 single-threaded worker processes on loopback,
# client.gather(client.map(sq, range(N))), and one client.submit(...).result()
# at a time. Prints "W7 jobs=N secs=S jobs_per_s=R one_median_us=M".
import sys
import time

from distributed import Client, LocalCluster


def sq(x):
    return x * x


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    one = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        assert client.submit(sq, 3).result() == 9
        t0 = time.perf_counter()
        r = client.gather(client.map(sq, range(n)))
        secs = time.perf_counter() - t0
        assert len(r) == n and r[-1] == (n - 1) ** 2
        times = []
        for i in range(one):
            t = time.perf_counter()
            assert client.submit(sq, i, pure=False).result() == i * i
            times.append(time.perf_counter() - t)
        times.sort()
        print("W7 jobs=%d secs=%.4f jobs_per_s=%.0f one_median_us=%.0f"
              % (n, secs, n / secs, times[one // 2] * 1e6))


if __name__ == "__main__":
    main()
