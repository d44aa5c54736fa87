//! Request targets that real origins read differently from the router
//! cannot route around a route's policy.
//!
//! Two real origins that normalise differently: Python's `http.server`
//! (drops a `#fragment`, decodes `%2F`) and a Node.js server that parses
//! the URL with `new URL` (reads `\` as `/`) and decodes the path. Each is
//! first asked directly, to show the protected resource such a target
//! would reach; then through the gateway, where routes guard `/admin` and
//! `/secret/` with an IP rule and a catch-all route sends the rest on.
//! `scripts/test.sh` installs python3 and nodejs.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// A child process serving HTTP on 127.0.0.1, killed when dropped.
struct Origin {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, which prints its port (alone, or in `words`) on the
/// first line of its standard output.
fn origin(mut cmd: Command, what: &str) -> Origin {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/test.sh installs it)"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the origin says where it listens");
    let port: u16 = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() >= 2)
        .find_map(|w| w.parse().ok().filter(|&p| p > 1024))
        .unwrap_or_else(|| panic!("{what}: no port in {line:?}"));
    Origin {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Python's `http.server` over a directory holding `admin` and `secret/x`.
fn python_origin() -> Origin {
    let dir = std::env::temp_dir().join(format!("ringway-targets-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("secret")).expect("dir");
    std::fs::write(dir.join("admin"), "ADMIN PAGE").expect("file");
    std::fs::write(dir.join("secret/x"), "SECRET FILE").expect("file");
    std::fs::write(dir.join("public"), "public page").expect("file");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
    ])
    .arg(&dir);
    origin(cmd, "python3")
}

/// A Node.js server that reads the target as applications do: `new URL`,
/// then the decoded path.
fn node_origin() -> Origin {
    let script = "const http = require('http');\n\
        const s = http.createServer((req, res) => {\n\
          const path = decodeURIComponent(new URL(req.url, 'http://origin').pathname);\n\
          res.end((path.startsWith('/secret/') ? 'SECRET ' : 'public ') + path);\n\
        });\n\
        s.listen(0, '127.0.0.1', () => console.log(s.address().port));\n";
    let mut cmd = Command::new("node");
    cmd.args(["-e", script]);
    origin(cmd, "node")
}

/// Sends `target` as it is (no client normalises it) and returns the
/// status and body.
fn get(addr: SocketAddr, host: &str, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn gateway(py: SocketAddr, node: SocketAddr, slashes: &str) -> TestGateway {
    let toml = format!(
        "workers = 1\n\
         [[listeners]]\naddress = \"127.0.0.1:0\"\nencoded-slashes = \"{slashes}\"\n\
         [[upstreams]]\nname = \"py\"\nservers = [\"{py}\"]\n\
         [[upstreams]]\nname = \"node\"\nservers = [\"{node}\"]\n\
         [[routes]]\nhost = \"py.test\"\npath = \"/admin\"\nupstream = \"py\"\nip-deny = [\"127.0.0.0/8\"]\n\
         [[routes]]\nhost = \"py.test\"\npath-prefix = \"/secret/\"\nupstream = \"py\"\nip-deny = [\"127.0.0.0/8\"]\n\
         [[routes]]\nhost = \"py.test\"\nupstream = \"py\"\n\
         [[routes]]\nhost = \"node.test\"\npath-prefix = \"/secret/\"\nupstream = \"node\"\nip-deny = [\"127.0.0.0/8\"]\n\
         [[routes]]\nhost = \"node.test\"\nupstream = \"node\"\n"
    );
    TestGateway::start(&toml, "epoll")
}

#[test]
fn targets_origins_read_differently_cannot_route_around_a_guard() {
    let py = python_origin();
    let node = node_origin();

    // What each origin makes of these targets when asked directly.
    assert_eq!(
        get(py.addr, "py.test", "/admin#frag"),
        (200, "ADMIN PAGE".into())
    );
    assert_eq!(
        get(py.addr, "py.test", "/secret%2Fx"),
        (200, "SECRET FILE".into())
    );
    assert_eq!(
        get(node.addr, "node.test", "/secret\\x").1,
        "SECRET /secret/x"
    );
    assert_eq!(
        get(node.addr, "node.test", "/secret%2Fx").1,
        "SECRET /secret/x"
    );

    // Through the gateway (encoded-slashes at its default, reject).
    let gw = gateway(py.addr, node.addr, "reject");
    assert_eq!(get(gw.addr, "py.test", "/admin").0, 403, "the guard itself");
    assert_eq!(
        get(gw.addr, "py.test", "/public"),
        (200, "public page".into())
    );
    assert_eq!(
        get(gw.addr, "node.test", "/hello?filter[a]=1").1,
        "public /hello"
    );
    for (host, target) in [
        ("py.test", "/admin#frag"),
        ("py.test", "/secret%2Fx"),
        ("py.test", "/secret%2fx"),
        ("node.test", "/secret\\x"),
        ("node.test", "/secret%2Fx"),
        ("node.test", "/secret%5Cx"),
        ("node.test", "/secret|x"),
    ] {
        assert_eq!(get(gw.addr, host, target).0, 400, "{host} {target}");
    }
    gw.wait_for("the 400s counted", |t| t.rejected_400 == 7);

    // decode: the decoded path is routed, so the guard applies.
    let gw = gateway(py.addr, node.addr, "decode");
    assert_eq!(get(gw.addr, "py.test", "/secret%2Fx").0, 403);
    assert_eq!(get(gw.addr, "node.test", "/secret%2fx").0, 403);
    assert_eq!(get(gw.addr, "node.test", "/secret%5Cx").0, 400);
    assert_eq!(
        get(gw.addr, "py.test", "/a%2F%2Fb").0,
        400,
        "no // by decoding"
    );

    // pass: the target goes as sent; an origin that decodes %2F is then
    // reached around the guard. This is why it is not the default.
    let gw = gateway(py.addr, node.addr, "pass");
    assert_eq!(
        get(gw.addr, "py.test", "/secret%2Fx"),
        (200, "SECRET FILE".into())
    );
}
