//! Headless Chromium for tests of the status page: each `--dump-dom` run
//! loads a URL, lets the page run for a budget of virtual time, and prints
//! the DOM as it then stands.
//!
//! Virtual time: timers jump ahead whenever the page waits on nothing but
//! them, and stand still while a fetch is in flight, so a 2 s refresh
//! interval costs no wall time and no refresh is cut short. A page still
//! needs real time to come up on a loaded machine, so callers wait for a
//! condition over a bounded number of runs ([`Browser::dom_until`])
//! rather than trusting one.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser scripts/test.sh installs (Debian's `chromium`).
const CHROMIUM: &str = "chromium";
/// Virtual time a page gets per run: two of its 2 s refreshes.
const BUDGET_MS: u32 = 4_500;
/// Wall time one run may take before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Runs before [`Browser::dom_until`] gives up.
const TRIES: usize = 8;

/// One test's browser: its own profile directory, removed on drop.
pub struct Browser {
    profile: PathBuf,
}

impl Browser {
    /// `name` tells this test's profile apart from others running at once.
    pub fn new(name: &str) -> Browser {
        let profile =
            std::env::temp_dir().join(format!("ringway-chromium-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a profile directory");
        Browser { profile }
    }

    /// Loads `url` and returns the DOM after [`BUDGET_MS`] of virtual time.
    pub fn dump_dom(&self, url: &str) -> String {
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
            ])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .arg(format!("--virtual-time-budget={BUDGET_MS}"))
            .arg("--dump-dom")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium runs (scripts/test.sh installs Debian's chromium package)");
        // Read both pipes on threads so a full one cannot stall the
        // browser while this thread watches the clock.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for chromium") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium ran over {RUN_LIMIT:?} on {url}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let dom = out.join().expect("stdout reader");
        let log = err.join().expect("stderr reader");
        assert!(
            status.success(),
            "chromium failed on {url}: {status}\n{log}"
        );
        dom
    }

    /// Loads `url` until the DOM satisfies `cond`, at most [`TRIES`] times;
    /// returns that DOM, or panics with the last one.
    pub fn dom_until(&self, url: &str, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut dom = String::new();
        for _ in 0..TRIES {
            dom = self.dump_dom(url);
            if cond(&dom) {
                return dom;
            }
        }
        panic!("after {TRIES} loads of {url}, still not: {what}\n--- last DOM:\n{dom}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The text of the first element carrying `data-k="key"` inside the
/// element that carries `row` (e.g. `data-route="api"`): what lies between
/// the end of its start tag and the next tag.
pub fn cell(dom: &str, row: &str, key: &str) -> Option<String> {
    let start = dom.find(row)?;
    let end = dom[start..].find("</tr>").map_or(dom.len(), |e| start + e);
    let within = &dom[start..end];
    let at = within.find(&format!("data-k=\"{key}\""))?;
    let text = &within[at..];
    let text = &text[text.find('>')? + 1..];
    Some(text[..text.find('<')?].to_string())
}

/// The text of the element with `id="id"`.
pub fn by_id(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let text = &dom[at..];
    let text = &text[text.find('>')? + 1..];
    Some(text[..text.find('<')?].to_string())
}

/// Whether the element with `id="id"` has the `hidden` attribute.
pub fn is_hidden(dom: &str, id: &str) -> bool {
    let needle = format!("id=\"{id}\"");
    let Some(at) = dom.find(&needle) else {
        return true;
    };
    let tag_start = dom[..at].rfind('<').unwrap_or(0);
    let tag_end = at + dom[at..].find('>').unwrap_or(0);
    dom[tag_start..tag_end].contains(" hidden")
}
