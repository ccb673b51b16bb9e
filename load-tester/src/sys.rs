//! The few system calls the load tester needs beyond std: monotonic and thread CPU clocks,
//! the open-file limit, and `sendmmsg` behind a safe, slice-based API.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on the machine, so a
/// timestamp written by a publisher in one process is comparable in another.
pub fn now_ns() -> u64 {
    clock(libc::CLOCK_MONOTONIC)
}

/// CPU nanoseconds the calling thread has used.
pub fn thread_cpu_ns() -> u64 {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Raises the soft open-file limit to the hard one and returns the result.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write to and then read from.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// The most datagrams handed to one `sendmmsg` call: larger batches bring no more here.
pub const BATCH: usize = 64;

/// Sends one payload to many IPv4 addresses with `sendmmsg`, [`BATCH`] at a time.
///
/// Destinations are converted once, so a blaster reusing it pays only the system call.
pub struct Blaster {
    socket: UdpSocket,
    dests: Vec<libc::sockaddr_in>,
}

/// What one [`Blaster::send_all`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlastCount {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Datagrams refused (`ENOBUFS`, an ICMP error queued on the socket, ...): skipped.
    pub failed: u64,
}

impl Blaster {
    /// A blaster sending from `socket` (blocking) to `dests`.
    ///
    /// # Errors
    /// `InvalidInput` if a destination is not IPv4 (loopback tests use 127.0.0.0/8 only).
    pub fn new(socket: UdpSocket, dests: &[SocketAddr]) -> io::Result<Self> {
        let dests = dests
            .iter()
            .map(|a| match a {
                SocketAddr::V4(v4) => Ok(sockaddr(*v4)),
                SocketAddr::V6(_) => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the raw blaster sends to IPv4 only",
                )),
            })
            .collect::<io::Result<_>>()?;
        Ok(Blaster { socket, dests })
    }

    /// Number of destinations.
    pub fn len(&self) -> usize {
        self.dests.len()
    }

    /// Whether there are no destinations.
    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    /// Sends `payload` once to each destination in `range`, resuming after partial batches
    /// and skipping a destination the kernel refuses rather than spinning on it.
    pub fn send_all(&self, payload: &[u8], range: std::ops::Range<usize>) -> BlastCount {
        let mut count = BlastCount::default();
        let dests = &self.dests[range];
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        // SAFETY (for the zeroed values): mmsghdr is plain old data; all-zero is valid.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut i = 0;
        while i < dests.len() {
            let n = (dests.len() - i).min(BATCH);
            for (m, d) in msgs.iter_mut().zip(&dests[i..i + n]) {
                m.msg_hdr.msg_name = d as *const libc::sockaddr_in as *mut libc::c_void;
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                m.msg_hdr.msg_iov = &mut iov;
                m.msg_hdr.msg_iovlen = 1;
                m.msg_len = 0;
            }
            // SAFETY: the first `n` entries point at `iov` (which points at `payload`) and at
            // destination addresses in `self.dests`; all outlive the call, which only reads
            // them and writes `msg_len`.
            let r =
                unsafe { libc::sendmmsg(self.socket.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
            if r > 0 {
                count.sent += r as u64;
                i += r as usize;
            } else {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram of the batch went nowhere: count it and go on.
                count.failed += 1;
                i += 1;
            }
        }
        count
    }
}

/// Asks for a socket buffer size (`SO_SNDBUF` or `SO_RCVBUF`); the kernel may grant less
/// (clamped to `net.core.wmem_max`/`rmem_max`), which is fine for a load generator.
pub fn set_buffer(socket: &UdpSocket, option: libc::c_int, bytes: usize) {
    let v = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: a valid socket and a pointer to an int of the stated size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
