//! The `settings!` macro, which turns the one table of settings (`table.rs`) into everything
//! that lists them: the flags (clap), the configuration file's keys (serde), the merge of
//! the command line over the file over the defaults, [`Live`](super::Live), and when a
//! change to each takes effect. A setting can't be known to one of these and not another.

/// When a change to a setting, made in the file and read by SIGHUP, takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At once: it is part of [`Live`](super::Live), which the handler reads at each request.
    Live,
    /// At once, applied by the server's reloader itself (users, channels).
    Reload,
    /// At the next start: it shapes sockets, threads or stores. A reload logs that it waits.
    Restart,
}

/// Generates, from rows of
///
/// ```text
/// /// The --help text.
/// #[arg(long, ...clap's attributes...)]
/// live|reload|restart name: Type = Reader(its arguments);
/// ```
///
/// the struct `Settings` (clap `Args`, one field per row), the private `Raw` (serde: the
/// file, every key optional and read as `Reader` reads it), `Settings::from_file`,
/// `Settings::under` (a flag given on the command line wins over the file),
/// `Settings::changed` (which settings differ, and [`When`] each takes effect), and `Live`
/// with `Settings::live()` from the rows marked `live`.
macro_rules! settings {
    (@when live) => { When::Live };
    (@when reload) => { When::Reload };
    (@when restart) => { When::Restart };

    // `Live` holds the rows marked `live`, gathered one row at a time: a struct's fields
    // can't be picked out inside one repetition.
    (@live [$($kept:tt)*] [$($doc:tt)*] live $name:ident: $ty:ty; $($rest:tt)*) => {
        settings!(@live [$($kept)* $($doc)* $name: $ty,] $($rest)*);
    };
    (@live [$($kept:tt)*] [$($doc:tt)*] $when:ident $name:ident: $ty:ty; $($rest:tt)*) => {
        settings!(@live [$($kept)*] $($rest)*);
    };
    (@live [$($(#[$meta:meta])* $name:ident: $ty:ty,)*]) => {
        /// The settings a reload changes while the server runs (the rows of the table marked
        /// `live`); the handler reads them at each request that needs one.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Live {
            $($(#[$meta])* pub $name: $ty,)*
        }

        impl Settings {
            /// The part of the settings the handler reads while running.
            pub fn live(&self) -> Live {
                Live {
                    $($name: self.$name.clone(),)*
                }
            }
        }
    };

    (
        $(
            $(#[doc = $doc:literal])*
            #[arg($($arg:tt)*)]
            $when:ident $name:ident: $ty:ty = $reader:ident $(($($param:expr),*))?;
        )*
    ) => {
        /// Every setting of the server: a flag of `chat-server` and a key of its
        /// configuration file each (settings marked `#[arg(skip)]` are keys only).
        #[derive(Debug, Clone, clap::Args)]
        // The docs are the --help text, where `[[channel]]` is TOML, not a link.
        #[allow(rustdoc::broken_intra_doc_links)]
        pub struct Settings {
            $(
                $(#[doc = $doc])*
                #[arg($($arg)*)]
                pub $name: $ty,
            )*
        }

        /// The configuration file as serde reads it: each key optional, its value as its
        /// reader takes it (with its place in the file, where a message may need it).
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        struct Raw {
            $($name: Option<<$reader as Read>::Raw>,)*
        }

        impl Settings {
            /// The settings `file` holds, the defaults where it says nothing.
            fn from_file(file: &TomlFile<'_>) -> Result<Settings, ConfigError> {
                let raw: Raw = file.parse()?;
                let mut settings = Settings::default();
                $(
                    if let Some(raw) = raw.$name {
                        let key = stringify!($name).replace('_', "-");
                        let at = At { key: &key, file };
                        let value = $reader $(($($param),*))?.read(raw, &at)?;
                        settings.$name = Fill::fill(value);
                    }
                )*
                Ok(settings)
            }

            /// These settings (a file's) under the command line `cli`: where `given` says
            /// the command line named a flag, its value wins.
            pub(super) fn under(mut self, cli: &Settings, given: impl Fn(&str) -> bool) -> Settings {
                $(
                    if given(stringify!($name)) {
                        self.$name = cli.$name.clone();
                    }
                )*
                self
            }

            /// The settings whose values differ between `self` and `other`, by field name,
            /// each with when a change to it takes effect.
            pub fn changed(&self, other: &Settings) -> Vec<(&'static str, When)> {
                let mut out = Vec::new();
                $(
                    // Compared as text, as the operator wrote them: a NaN is the same NaN.
                    if format!("{:?}", self.$name) != format!("{:?}", other.$name) {
                        out.push((stringify!($name), settings!(@when $when)));
                    }
                )*
                out
            }
        }

        settings!(@live [] $([$(#[doc = $doc])*] $when $name: $ty;)*);
    };
}
