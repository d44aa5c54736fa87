//! Inputs shared by ringway's criterion benchmarks: realistic request heads
//! and a large generated route table.
//!
//! Run them with `cargo bench -p ringway-benches`.

#![forbid(unsafe_code)]

/// Request heads as real clients send them: a bare API call, a browser
/// navigation, and an API call behind a CDN.
pub const HEADS: &[(&str, &[u8])] = &[
    (
        "curl",
        b"GET /api/v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
    ),
    (
        "browser",
        b"GET /products/shoes?color=blue&size=42 HTTP/1.1\r\nHost: shop.example.com\r\n\
Connection: keep-alive\r\nsec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
Cookie: session=8f2b1c9d7e6a5f4b3c2d1e0f; _ga=GA1.1.123456789.1700000000; theme=dark\r\n\r\n",
    ),
    (
        "api-behind-cdn",
        b"POST /v2/orders HTTP/1.1\r\nHost: orders.internal.example.com\r\nContent-Type: application/json\r\n\
Content-Length: 512\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\r\n\
X-Request-Id: 6c1f6f3e-7c1e-4c1a-9b52-0e5f0c6b7a11\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.23\r\n\
X-Forwarded-Proto: https\r\nVia: 1.1 cdn-edge\r\nAccept: application/json\r\nUser-Agent: orders-client/3.2.1\r\n\r\n",
    ),
];

/// A config with `n` routes: a mix of exact hosts, wildcard hosts and
/// host-less routes, exact paths and prefixes of several lengths, some
/// with methods, as a large API catalogue has.
pub fn route_table(n: usize) -> String {
    let mut s = String::from("[[listeners]]\naddress = \"127.0.0.1:0\"\n");
    for i in 0..n {
        s.push_str(&format!("[[routes]]\nname = \"r{i}\"\n"));
        match i % 4 {
            0 => s.push_str(&format!("host = \"svc{}.example.com\"\n", i % 50)),
            1 => s.push_str(&format!("host = \"*.tenant{}.example.com\"\n", i % 20)),
            _ => {}
        }
        match i % 3 {
            0 => s.push_str(&format!("path = \"/api/v{}/resource{i}\"\n", i % 3)),
            1 => s.push_str(&format!("path-prefix = \"/api/v{}/group{i}/\"\n", i % 3)),
            _ => s.push_str(&format!("path-prefix = \"/static/{i}/\"\n")),
        }
        if i % 5 == 0 {
            s.push_str("methods = [\"GET\", \"HEAD\"]\n");
        }
        s.push_str("[routes.respond]\n");
    }
    s
}
