//! The client's interfaces: [`line`], the classic line mode (the editor, a plain terminal,
//! scripts), and [`tui`], the full-screen client. Both show the same
//! [`Out`](crate::session::Out)put of the session and send it what is typed.

pub mod inline;
pub mod input;
pub mod line;
pub mod prompt;
pub mod tui;
