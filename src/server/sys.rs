//! Batched datagram I/O (`sendmmsg`, `recvmmsg`) behind a safe API; all of the server's
//! `unsafe` lives here.
//!
//! Written on `libc` because socket2 (which makes and tunes the sockets) has no batched
//! calls, and the batched calls of other crates either send to one destination (UDP GSO,
//! useless for fan-out: see `shared/PERFORMANCE.md`) or allocate per call. The arrays here
//! live on the stack, so a batch costs no allocation.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use socket2::SockAddr;

/// Most datagrams one `sendmmsg`/`recvmmsg` call carries. Larger batches bring no more
/// throughput on this kind of machine (`shared/PERFORMANCE.md`).
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
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let addrs: [MaybeUninit<SockAddr>; MAX_BATCH] = [const { MaybeUninit::uninit() }; MAX_BATCH];
    let mut addrs = addrs;
    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    for (i, (payload, dest)) in msgs[..n].iter().enumerate() {
        let addr = addrs[i].write(SockAddr::from(*dest));
        iovs[i] = libc::iovec {
            // sendmmsg only reads the buffer; the mutable pointer is the C API's type.
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        hdrs[i].msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
        hdrs[i].msg_hdr.msg_namelen = addr.len();
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at initialised addresses and iovecs that live
    // until the end of this function, and at payloads borrowed for its duration.
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
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
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
    fn empty_batch_sends_nothing() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(send_batch(&tx, &[]).unwrap(), 0);
    }
}
