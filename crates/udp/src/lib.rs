//! Batched datagram I/O (`sendmmsg`, `recvmmsg`) and the list of network interfaces
//! (`getifaddrs`) behind a safe API: all of the workspace's `unsafe` lives in this crate
//! (every other crate denies it), and the server, the load tester and the client share it
//! (one copy of the system-call layer). Multicast socket options go through socket2's
//! safe API instead.
//!
//! Written on `libc` because socket2 (which makes and tunes the sockets) has no batched
//! calls, and the batched calls of other crates either send to one destination (UDP GSO,
//! useless for fan-out: see `docs/PERFORMANCE.md`) or allocate per call. The arrays here
//! live on the stack, so a batch costs no allocation.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use socket2::SockAddr;

/// Most datagrams one `sendmmsg`/`recvmmsg` call carries. Larger batches bring no more
/// throughput on this kind of machine (`docs/PERFORMANCE.md`).
pub const MAX_BATCH: usize = 64;

/// Sends up to [`MAX_BATCH`] datagrams of `msgs` (payload, destination) in one system call.
///
/// Returns how many were sent, counted from the start of `msgs`: the kernel stops at the
/// first datagram it can't send, so the caller resumes after the returned count (and, when
/// the call failed on the very first entry, decides about that entry from the error).
///
/// # Errors
/// The error of the first datagram when none was sent. `Interrupted` means nothing was
/// tried and the call can simply be repeated.
pub fn send_batch(socket: &impl AsFd, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
    sendmmsg(
        socket,
        msgs.iter().map(|&(payload, dest)| (payload, dest, None)),
    )
}

/// The control message that sets one datagram's IPv4 source address: a `cmsghdr` followed
/// by an `in_pktinfo`, laid out as the `CMSG_*` macros expect (checked at compile time below).
#[repr(C)]
struct PktinfoCmsg {
    hdr: libc::cmsghdr,
    info: libc::in_pktinfo,
}

impl PktinfoCmsg {
    /// Makes this (zeroed) message say: send from `source`.
    fn set_source(&mut self, source: Ipv4Addr) {
        self.hdr.cmsg_len = PKTINFO_LEN as _;
        self.hdr.cmsg_level = libc::IPPROTO_IP;
        self.hdr.cmsg_type = libc::IP_PKTINFO;
        // Interface 0: the route to the destination picks it; ipi_spec_dst is the source.
        self.info.ipi_ifindex = 0;
        self.info.ipi_spec_dst = libc::in_addr {
            s_addr: u32::from(source).to_be(),
        };
    }
}

// SAFETY: CMSG_LEN and CMSG_SPACE only compute sizes from their argument.
const PKTINFO_LEN: usize =
    unsafe { libc::CMSG_LEN(mem::size_of::<libc::in_pktinfo>() as libc::c_uint) } as usize;
// The data of a control message starts CMSG_LEN(0) bytes into it, and one message takes
// CMSG_SPACE bytes: the struct must agree, or the kernel would read the wrong bytes.
// SAFETY: as above, size computations only.
const _: () = assert!(mem::offset_of!(PktinfoCmsg, info) == unsafe { libc::CMSG_LEN(0) } as usize);
const _: () = assert!(
    mem::size_of::<PktinfoCmsg>()
        // SAFETY: CMSG_SPACE only computes a size.
        == unsafe { libc::CMSG_SPACE(mem::size_of::<libc::in_pktinfo>() as libc::c_uint) } as usize
);

/// Sends up to [`MAX_BATCH`] datagrams of `msgs` (payload, local source address,
/// destination) in one system call, each from the IPv4 source address it names.
///
/// The source is set per datagram with an `IP_PKTINFO` control message (`ipi_spec_dst`), so
/// one socket can speak for many local addresses: on loopback every address of 127.0.0.0/8
/// is local, which lets a load generator appear as hundreds of thousands of clients without
/// a socket (and a file) for each. The source port is the socket's own. Bind the socket to
/// `0.0.0.0` to receive the answers sent to all those addresses.
///
/// Returns how many were sent, counted from the start of `msgs`, as [`send_batch`] does.
///
/// # Errors
/// `InvalidInput` if a destination is not IPv4 (nothing is sent then); otherwise the error of
/// the first datagram when none was sent, e.g. `AddrNotAvailable` for a source address that
/// is not local. `Interrupted` means nothing was tried and the call can simply be repeated.
pub fn send_batch_from(
    socket: &impl AsFd,
    msgs: &[(&[u8], Ipv4Addr, SocketAddr)],
) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if msgs[..n].iter().any(|(_, _, dest)| !dest.is_ipv4()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "choosing the source address per datagram works for IPv4 destinations only",
        ));
    }
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut cmsgs: [PktinfoCmsg; MAX_BATCH] = unsafe { mem::zeroed() };
    let msgs = msgs[..n]
        .iter()
        .zip(&mut cmsgs)
        .map(|(&(payload, source, dest), c)| {
            c.set_source(source);
            (payload, dest, Some(c))
        });
    sendmmsg(socket, msgs)
}

/// Sends up to [`MAX_BATCH`] datagrams of `msgs` (payload, destination, and the control
/// message that sets its source, if any) in one `sendmmsg`, as [`send_batch`] says.
///
/// The call's arrays live on the stack; the control messages are the caller's, borrowed
/// until the call returns.
fn sendmmsg<'a>(
    socket: &impl AsFd,
    msgs: impl ExactSizeIterator<Item = (&'a [u8], SocketAddr, Option<&'a mut PktinfoCmsg>)>,
) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut addrs: [MaybeUninit<SockAddr>; MAX_BATCH] =
        [const { MaybeUninit::uninit() }; MAX_BATCH];
    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    for (i, (payload, dest, control)) in msgs.take(n).enumerate() {
        let addr = addrs[i].write(SockAddr::from(dest));
        iovs[i] = libc::iovec {
            // sendmmsg only reads the buffer; the mutable pointer is the C API's type.
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = addr.as_ptr() as *mut libc::c_void;
        h.msg_namelen = addr.len();
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        if let Some(c) = control {
            h.msg_control = c as *mut PktinfoCmsg as *mut libc::c_void;
            h.msg_controllen = mem::size_of::<PktinfoCmsg>() as _;
        }
    }
    // SAFETY: the first `n` headers point at initialised addresses and iovecs that live
    // until the end of this function, and at payloads and control messages borrowed for
    // its duration; the kernel only reads them (and writes `msg_len`).
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_fd().as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            0,
        )
    };
    // SockAddr has no Drop, so leaving the array's initialised entries unread leaks nothing.
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// One address of a local network interface, as `getifaddrs(3)` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface's name (`lo`, `eth0`).
    pub name: String,
    /// Its index (what IPv6 multicast options take); 0 if it could not be found.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// The IPv4 broadcast address of its network, if it has one.
    pub broadcast: Option<Ipv4Addr>,
    /// Whether the interface is up.
    pub up: bool,
    /// Whether it is a loopback interface.
    pub loopback: bool,
    /// Whether it says it supports multicast (loopback does not say so, yet carries
    /// multicast between the sockets of one machine).
    pub multicast: bool,
}

/// The IP address in a socket address the kernel wrote, if it is IPv4 or IPv6.
///
/// # Safety
/// `sa` must be null or point at a socket address whose family field tells its true type.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller promises the family field tells which struct `sa` points at.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let v4 = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let v6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// Every IPv4 and IPv6 address of every local interface.
///
/// # Errors
/// What `getifaddrs` reports (out of memory, no sockets).
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut at = head;
    while !at.is_null() {
        // SAFETY: `at` is an element of the list getifaddrs made, alive until freeifaddrs;
        // its name is a NUL-terminated string and its addresses are null or tagged by family.
        let (name, addr, broadcast, flags) = unsafe {
            let ifa = &*at;
            at = ifa.ifa_next;
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name);
            let flags = ifa.ifa_flags;
            let broadcast = if flags & libc::IFF_BROADCAST as u32 != 0 {
                ip_of(ifa.ifa_ifu)
            } else {
                None
            };
            (name.to_owned(), ip_of(ifa.ifa_addr), broadcast, flags)
        };
        let Some(addr) = addr else {
            continue;
        };
        // SAFETY: `name` is a NUL-terminated string we own.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        out.push(Interface {
            name: name.to_string_lossy().into_owned(),
            index,
            addr,
            broadcast: match broadcast {
                Some(IpAddr::V4(b)) => Some(b),
                _ => None,
            },
            up: flags & libc::IFF_UP as u32 != 0,
            loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
            multicast: flags & libc::IFF_MULTICAST as u32 != 0,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed once; nothing borrows from it now.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Buffers for receiving a batch of datagrams with one `recvmmsg` call.
pub struct RecvBatch {
    slot: usize,
    bufs: Vec<u8>,
    lens: [usize; MAX_BATCH],
    from: [Option<SocketAddr>; MAX_BATCH],
    count: usize,
}

impl RecvBatch {
    /// Room for [`MAX_BATCH`] datagrams of up to `slot` bytes each. Give one byte more than
    /// the largest datagram accepted, so that an over-long one is seen to be over-long.
    pub fn new(slot: usize) -> Self {
        RecvBatch {
            slot,
            bufs: vec![0; slot * MAX_BATCH],
            lens: [0; MAX_BATCH],
            from: [None; MAX_BATCH],
            count: 0,
        }
    }

    /// Waits for at least one datagram (up to the socket's read timeout), then takes all
    /// that are queued, up to [`MAX_BATCH`]. Returns how many were taken.
    ///
    /// # Errors
    /// `WouldBlock`/`TimedOut` when the read timeout passed with nothing to read; any other
    /// error of `recvmmsg`.
    pub fn recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
        for (i, chunk) in self.bufs.chunks_exact_mut(self.slot).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: chunk.as_mut_ptr() as *mut libc::c_void,
                iov_len: chunk.len(),
            };
            hdrs[i].msg_hdr.msg_name = &mut names[i] as *mut _ as *mut libc::c_void;
            hdrs[i].msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as _;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a name buffer and one iovec over a distinct slot of
        // `self.bufs`, all alive and exclusively borrowed for the call.
        let got = unsafe {
            libc::recvmmsg(
                socket.as_fd().as_raw_fd(),
                hdrs.as_mut_ptr(),
                MAX_BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.count = got as usize;
        for i in 0..self.count {
            self.lens[i] = (hdrs[i].msg_len as usize).min(self.slot);
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
            let addr = unsafe { SockAddr::new(names[i], hdrs[i].msg_hdr.msg_namelen) };
            self.from[i] = addr.as_socket();
        }
        Ok(self.count)
    }

    /// The datagrams of the last [`recv`](Self::recv): source and bytes (at most `slot`
    /// bytes; a longer datagram is cut to `slot`). Sources that are not IP are skipped.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        (0..self.count).filter_map(move |i| {
            let from = self.from[i]?;
            let start = i * self.slot;
            Some((from, &self.bufs[start..start + self.lens[i]]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn batch_goes_out_and_comes_back_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3 + i as usize]).collect();
        let msgs: Vec<(&[u8], SocketAddr)> = payloads.iter().map(|p| (&p[..], to)).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += send_batch(&tx, &msgs[sent..]).unwrap();
        }
        let mut batch = RecvBatch::new(64);
        let mut got = Vec::new();
        while got.len() < 10 {
            batch.recv(&rx).unwrap();
            got.extend(batch.iter().map(|(from, b)| (from, b.to_vec())));
        }
        assert_eq!(got.len(), 10);
        for (i, (from, bytes)) in got.iter().enumerate() {
            assert_eq!(*from, tx.local_addr().unwrap());
            assert_eq!(bytes, &payloads[i]);
        }
    }

    #[test]
    fn over_long_datagram_is_cut_to_the_slot() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[7u8; 100], rx.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(10);
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        let (_, bytes) = batch.iter().next().unwrap();
        assert_eq!(bytes.len(), 10);
    }

    #[test]
    fn each_datagram_leaves_from_the_source_it_names() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = tx.local_addr().unwrap().port();
        let to = rx.local_addr().unwrap();
        let sources: Vec<Ipv4Addr> = (0..100u32)
            .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 9, 0, 1)) + i * 257))
            .collect();
        let payload = [1u8, 2, 3];
        let msgs: Vec<(&[u8], Ipv4Addr, SocketAddr)> =
            sources.iter().map(|&s| (&payload[..], s, to)).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += send_batch_from(&tx, &msgs[sent..]).unwrap();
        }
        let mut batch = RecvBatch::new(64);
        let mut from = Vec::new();
        while from.len() < msgs.len() {
            batch.recv(&rx).unwrap();
            from.extend(batch.iter().map(|(f, _)| f));
        }
        let want: Vec<SocketAddr> = sources
            .iter()
            .map(|&s| SocketAddr::from((s, port)))
            .collect();
        assert_eq!(from, want);
    }

    #[test]
    fn a_foreign_source_or_an_ipv6_destination_is_refused() {
        let tx = UdpSocket::bind("0.0.0.0:0").unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let e = send_batch_from(&tx, &[(&b"x"[..], Ipv4Addr::LOCALHOST, v6)]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // 192.0.2.1 (TEST-NET-1) is no address of this machine: the kernel refuses it as a
        // source before anything leaves.
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let foreign = Ipv4Addr::new(192, 0, 2, 1);
        assert!(send_batch_from(&tx, &[(&b"x"[..], foreign, to)]).is_err());
    }

    #[test]
    fn loopback_is_among_the_interfaces() {
        let all = interfaces().unwrap();
        let lo = all
            .iter()
            .find(|i| i.addr == IpAddr::V4(Ipv4Addr::LOCALHOST))
            .expect("127.0.0.1 is listed");
        assert!(lo.loopback && lo.up && lo.index > 0, "{lo:?}");
    }

    #[test]
    fn empty_batch_sends_nothing() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(send_batch(&tx, &[]).unwrap(), 0);
    }
}
