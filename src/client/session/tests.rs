//! Unit tests of the session against a fake server socket.
