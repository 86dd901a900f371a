//! What a memoized command's result depends on, hashed into its cache key: the command line
//! and working directory (or a name the caller chose), and, when asked, environment
//! variables, files' modification times and the command's standard input. A changed input is
//! a new key, so a miss, never a stale replay.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::process::Stdio;

use sha2::{Digest, Sha256};

/// Input kept in memory up to this size; beyond it, in an unnamed temporary file.
const INPUT_IN_MEMORY: usize = 1024 * 1024;

/// A stable cache key for a command line run in `cwd`: a hash of both, so that any argv
/// (long, binary, with NUL-free bytes of any encoding) makes a short key. The same as
/// `CommandKey::new(argv, cwd).finish()`.
///
/// ```
/// use std::path::Path;
///
/// let a = cairn::command_key(&["ls".into(), "-l".into()], Path::new("/tmp"));
/// let b = cairn::command_key(&["ls".into(), "-l".into()], Path::new("/home"));
/// assert_ne!(a, b);
/// assert!(a.starts_with("cmd:"));
/// ```
pub fn command_key(argv: &[OsString], cwd: &Path) -> String {
    CommandKey::new(argv, cwd).finish()
}

/// The cache key of a memoized command, built from what its result depends on.
///
/// ```
/// use cairn::CommandKey;
/// use std::ffi::OsStr;
/// use std::path::Path;
///
/// let argv = ["curl".into(), "https://example.com".into()];
/// let plain = CommandKey::new(&argv, Path::new("/srv")).finish();
/// let mut k = CommandKey::new(&argv, Path::new("/srv"));
/// k.env(OsStr::new("TOKEN"), Some(OsStr::new("a")));
/// let with_a = k.finish();
/// let mut k = CommandKey::new(&argv, Path::new("/srv"));
/// k.env(OsStr::new("TOKEN"), Some(OsStr::new("b")));
/// assert_ne!(with_a, k.finish()); // another value: another key
/// assert_ne!(with_a, plain);
///
/// // Standard input is read to its end into the key, and kept for the command.
/// let mut k = CommandKey::new(&["cat".into()], Path::new("/srv"));
/// let kept = k.input(&b"hello\n"[..])?;
/// assert_eq!(kept.len(), 6);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CommandKey {
    hash: Sha256,
    /// A name given by the caller, used as is when nothing else is added.
    named: Option<String>,
    extended: bool,
}

impl CommandKey {
    /// The command line `argv` run in `cwd`.
    pub fn new(argv: &[OsString], cwd: &Path) -> Self {
        let mut hash = Sha256::new();
        // Length-prefixed, so that ["a b"] and ["a", "b"] differ.
        for part in std::iter::once(cwd.as_os_str()).chain(argv.iter().map(OsString::as_os_str)) {
            let bytes = os_bytes(part);
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(&bytes);
        }
        CommandKey { hash, named: None, extended: false }
    }

    /// A key the caller names instead of the command line: `name` itself, unless inputs are
    /// added, which then make it a hash of the name and the inputs.
    pub fn named(name: &str) -> Self {
        let mut k = CommandKey { hash: Sha256::new(), named: Some(name.to_owned()), extended: false };
        k.tag(b"name");
        k.part(name.as_bytes());
        k.extended = false;
        k
    }

    /// The value of environment variable `name` (`None`: unset), as the command will see it.
    pub fn env(&mut self, name: &OsStr, value: Option<&OsStr>) -> &mut Self {
        self.tag(b"env");
        self.part(&os_bytes(name));
        match value {
            Some(v) => {
                self.part(b"=");
                self.part(&os_bytes(v));
            }
            None => self.part(b"unset"),
        }
        self
    }

    /// The modification time of `path` (to the nanosecond), or its absence.
    pub fn modtime(&mut self, path: &Path) -> &mut Self {
        self.tag(b"modtime");
        self.part(&os_bytes(path.as_os_str()));
        match std::fs::metadata(path).and_then(|m| m.modified()) {
            Ok(t) => {
                let (secs, nanos) = match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => (i128::from(d.as_secs()), d.subsec_nanos()),
                    Err(e) => (-i128::from(e.duration().as_secs()), e.duration().subsec_nanos()),
                };
                self.part(format!("{secs}.{nanos:09}").as_bytes());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.part(b"missing"),
            Err(e) => self.part(format!("unreadable: {:?}", e.kind()).as_bytes()),
        }
        self
    }

    /// Read `input` (the command's standard input) to its end into the key, and keep it for
    /// the command: in memory up to 1 MiB, beyond that in an unnamed temporary file.
    pub fn input(&mut self, mut input: impl Read) -> io::Result<KeptInput> {
        self.tag(b"stdin");
        // Straight into the kept copy, without a zeroed read buffer: most commands get no
        // input or a little, and a 64 KiB buffer was 3% of a memo replay's instructions and 16
        // of its page faults (callgrind, perf; docs/BENCHMARKS.md).
        let mut memory = Vec::new();
        (&mut input).take(INPUT_IN_MEMORY as u64 + 1).read_to_end(&mut memory)?;
        self.hash.update(&memory);
        let mut len = memory.len() as u64;
        if memory.len() <= INPUT_IN_MEMORY {
            self.part(&len.to_be_bytes());
            return Ok(KeptInput { len, kept: Kept::Memory(memory) });
        }
        let mut file = tempfile::tempfile()?;
        file.write_all(&memory)?;
        drop(memory);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.hash.update(&buf[..n]);
            len += n as u64;
            file.write_all(&buf[..n])?;
        }
        self.part(&len.to_be_bytes());
        Ok(KeptInput { len, kept: Kept::File(file) })
    }

    /// The key.
    pub fn finish(self) -> String {
        match self.named {
            Some(name) if !self.extended => name,
            _ => {
                let digest = self.hash.finalize();
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("cmd:{hex}")
            }
        }
    }

    /// The start of an added input: a length prefix no real part can have, then its kind.
    fn tag(&mut self, kind: &[u8]) {
        self.extended = true;
        self.hash.update(u64::MAX.to_be_bytes());
        self.part(kind);
    }

    fn part(&mut self, bytes: &[u8]) {
        self.hash.update((bytes.len() as u64).to_be_bytes());
        self.hash.update(bytes);
    }
}

/// A command's standard input, read into its key and kept for it: see [`CommandKey::input`].
#[derive(Debug)]
pub struct KeptInput {
    len: u64,
    kept: Kept,
}

#[derive(Debug)]
enum Kept {
    Memory(Vec<u8>),
    File(std::fs::File),
}

impl KeptInput {
    /// How many bytes were read.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if the input was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The input for a child process, from its start: nothing for an empty input, else a
    /// file (the kept one, or a temporary one holding what was kept in memory). Give it to one
    /// child at a time: the file's position is shared.
    pub fn to_stdio(&self) -> io::Result<Stdio> {
        Ok(match &self.kept {
            Kept::Memory(bytes) if bytes.is_empty() => Stdio::null(),
            Kept::Memory(bytes) => {
                let mut f = tempfile::tempfile()?;
                f.write_all(bytes)?;
                f.rewind()?;
                Stdio::from(f)
            }
            Kept::File(f) => {
                let mut f = f.try_clone()?;
                f.rewind()?;
                Stdio::from(f)
            }
        })
    }
}

#[cfg(unix)]
fn os_bytes(s: &OsStr) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(s.as_bytes())
}

#[cfg(not(unix))]
fn os_bytes(s: &OsStr) -> Cow<'_, [u8]> {
    Cow::Owned(s.to_string_lossy().into_owned().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_key_separates_argument_boundaries_and_directories() {
        let k = |args: &[&str], cwd: &str| command_key(&argv(args), Path::new(cwd));
        assert_eq!(k(&["echo", "a b"], "/x"), k(&["echo", "a b"], "/x"));
        assert_ne!(k(&["echo", "a b"], "/x"), k(&["echo", "a", "b"], "/x"));
        assert_ne!(k(&["echo"], "/x"), k(&["echo"], "/y"));
    }

    /// Keys stored before inputs existed still hit: the plain key is the one of old.
    #[test]
    fn the_plain_key_is_unchanged_and_a_named_key_is_the_name() {
        // SHA-256 of the length-prefixed "/tmp", "echo", "hi", as the first version computed it.
        assert_eq!(
            command_key(&argv(&["echo", "hi"]), Path::new("/tmp")),
            "cmd:5a701ae1b3d91b6787e865c06592e33a7903ec46c706369e1667631a4b0be391"
        );
        assert_eq!(CommandKey::named("nightly").finish(), "nightly");
        let mut k = CommandKey::named("nightly");
        k.env(OsStr::new("X"), None);
        assert!(k.finish().starts_with("cmd:"));
    }

    #[test]
    fn every_input_changes_the_key_and_cannot_pose_as_an_argument() {
        let base = || CommandKey::new(&argv(&["cat"]), Path::new("/x"));
        let key = |f: &dyn Fn(&mut CommandKey)| {
            let mut k = base();
            f(&mut k);
            k.finish()
        };
        let keys = [
            key(&|_| {}),
            key(&|k| {
                k.env(OsStr::new("A"), None);
            }),
            key(&|k| {
                k.env(OsStr::new("A"), Some(OsStr::new("")));
            }),
            key(&|k| {
                k.env(OsStr::new("A"), Some(OsStr::new("1")));
            }),
            key(&|k| {
                k.input(&b""[..]).unwrap();
            }),
            key(&|k| {
                k.input(&b"hi"[..]).unwrap();
            }),
            key(&|k| {
                k.modtime(Path::new("/no/such/file/here"));
            }),
            command_key(&argv(&["cat", "env", "A", "unset"]), Path::new("/x")),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_file_modified_is_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("input.csv");
        std::fs::write(&f, "a").unwrap();
        let key = || CommandKey::new(&argv(&["wc"]), dir.path()).modtime(&f).clone().finish();
        let before = key();
        assert_eq!(before, key());
        let file = std::fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1)).unwrap();
        assert_ne!(before, key());
    }

    /// Input arriving a byte at a time hashes and keeps as input arriving at once, on either
    /// side of the size kept in memory: the key of a command fed the same stdin never changes.
    #[test]
    fn the_key_and_the_kept_input_do_not_depend_on_how_the_input_arrives() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let key = |input: &mut dyn Read| {
            let mut k = CommandKey::new(&argv(&["cat"]), Path::new("/"));
            let kept = k.input(input).unwrap();
            (k.finish(), kept.len, matches!(kept.kept, Kept::File(_)))
        };
        // SHA-256 of the length-prefixed "/" and "cat", the tag "stdin", "hi" and its length:
        // the key the first version of `input` computed, so results stored then still hit.
        assert_eq!(
            key(&mut &b"hi"[..]).0,
            "cmd:b75ce3fa4e02ce5310ada9414ba3bbe3c12904ae30bf451c75a2729457e7c47f"
        );
        for size in [0, 1, INPUT_IN_MEMORY, INPUT_IN_MEMORY + 1, 2 * INPUT_IN_MEMORY + 3] {
            let input: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let whole = key(&mut &input[..]);
            assert_eq!(whole, key(&mut Trickle(&input)), "{size} bytes");
            assert_eq!(whole.1, size as u64);
            assert_eq!(whole.2, size > INPUT_IN_MEMORY, "{size} bytes: kept in a file");
        }
    }

    #[test]
    fn large_input_spills_to_a_file_and_comes_back_whole() {
        use std::io::Read as _;
        let input: Vec<u8> = (0..3 * INPUT_IN_MEMORY).map(|i| (i % 251) as u8).collect();
        let mut k = CommandKey::new(&argv(&["cat"]), Path::new("/"));
        let kept = k.input(&input[..]).unwrap();
        assert_eq!(kept.len(), input.len() as u64);
        assert!(matches!(kept.kept, Kept::File(_)));
        let mut child = std::process::Command::new("cat")
            .stdin(kept.to_stdio().unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut got = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
        child.wait().unwrap();
        assert!(got == input);
    }
}
