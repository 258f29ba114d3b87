//! The account directory against real servers: an axum HTTP server on
//! `127.0.0.1:0` started inside each test for the HTTP backend, and files
//! in a temporary folder for the file backend, both built through
//! `directory::open` as the daemon builds them.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use recoverydesk::directory::{
    self, Account, Directory, DirectorySettings, HttpDirectory, LinkedAddress, Lookup,
};
use recoverydesk::secret::Secret;

const ALICE_JSON: &str = r#"{
    "username": "alice",
    "addresses": [{ "address": "alice@example.org", "verified": true, "primary": true }],
    "two_factor": ["totp"],
    "has_recovery_codes": true,
    "projects": ["alice-utils"],
    "created": "2019-04-01",
    "some_future_field": { "ignored": true }
}"#;

fn alice() -> Account {
    Account {
        username: "alice".into(),
        addresses: vec![LinkedAddress {
            address: "alice@example.org".into(),
            verified: true,
            primary: true,
        }],
        two_factor: vec!["totp".into()],
        has_recovery_codes: true,
        projects: vec!["alice-utils".into()],
    }
}

/// What the server saw: each request's raw path and Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The fake directory service. Routes on the raw, still percent-encoded
/// path so the tests see exactly what went over the wire; an optional
/// `/api` prefix stands for a base URL with a path.
async fn serve_directory(State(seen): State<Seen>, uri: Uri, headers: HeaderMap) -> Response {
    let raw_path = uri.path().to_string();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    seen.lock().unwrap().push((raw_path.clone(), auth));
    let json = |body: String| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    match raw_path.strip_prefix("/api").unwrap_or(&raw_path) {
        "/accounts/by-username/alice" | "/accounts/by-address/alice%40example.org" => {
            json(ALICE_JSON.into())
        }
        "/accounts/by-username/boom" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/accounts/by-username/busy" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "/accounts/by-username/unauthorised" => StatusCode::UNAUTHORIZED.into_response(),
        "/accounts/by-username/moved" => (
            StatusCode::FOUND,
            [(header::LOCATION, "http://127.0.0.1:9/elsewhere")],
        )
            .into_response(),
        "/accounts/by-username/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json(ALICE_JSON.into())
        }
        "/accounts/by-username/garbage" => json("<html>oops</html>".into()),
        "/accounts/by-username/wrong-shape" => json(r#"{"name": "alice"}"#.into()),
        "/accounts/by-username/huge" => json(format!(
            r#"{{"username": "huge", "projects": ["{}"]}}"#,
            "x".repeat(2 << 20)
        )),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the fake service; returns its base URL and what it sees.
async fn spawn_service() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let app = Router::new()
        .fallback(serve_directory)
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn http(base_url: &str, token: Option<&str>, timeout: Duration) -> HttpDirectory {
    HttpDirectory::new(base_url, token.map(Secret::new), timeout).unwrap()
}

fn is_unavailable(lookup: &Lookup) -> bool {
    matches!(lookup, Lookup::Unavailable { .. })
}

#[tokio::test]
async fn a_known_account_is_found_by_username_and_by_address() {
    let (base, _) = spawn_service().await;
    let dir = http(&base, None, Duration::from_secs(5));
    assert_eq!(dir.by_username("alice").await, Lookup::Found(alice()));
    assert_eq!(
        dir.by_address("alice@example.org").await,
        Lookup::Found(alice())
    );
}

#[tokio::test]
async fn a_404_is_not_found() {
    let (base, _) = spawn_service().await;
    let dir = http(&base, None, Duration::from_secs(5));
    assert_eq!(dir.by_username("nobody").await, Lookup::NotFound);
    assert_eq!(dir.by_address("nobody@example.org").await, Lookup::NotFound);
}

#[tokio::test]
async fn server_errors_are_unavailable_never_not_found() {
    let (base, _) = spawn_service().await;
    let dir = http(&base, None, Duration::from_secs(5));
    for name in ["boom", "busy", "unauthorised", "moved"] {
        let lookup = dir.by_username(name).await;
        assert!(is_unavailable(&lookup), "{name}: {lookup:?}");
    }
    let Lookup::Unavailable { reason } = dir.by_username("boom").await else {
        unreachable!()
    };
    assert!(reason.contains("500"), "{reason}");
}

#[tokio::test]
async fn a_slow_endpoint_beyond_the_timeout_is_unavailable() {
    let (base, _) = spawn_service().await;
    let dir = http(&base, None, Duration::from_millis(300));
    let started = Instant::now();
    let lookup = dir.by_username("slow").await;
    let elapsed = started.elapsed();
    let Lookup::Unavailable { reason } = lookup else {
        panic!("slow answer gave {lookup:?}")
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert!(
        elapsed < Duration::from_secs(2),
        "gave up only after {elapsed:?}"
    );
}

#[tokio::test]
async fn bad_json_and_oversized_bodies_are_unavailable() {
    let (base, _) = spawn_service().await;
    let dir = http(&base, None, Duration::from_secs(5));
    for name in ["garbage", "wrong-shape", "huge"] {
        let lookup = dir.by_username(name).await;
        assert!(is_unavailable(&lookup), "{name}: {lookup:?}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was just free: bind, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = http(
        &format!("http://127.0.0.1:{port}"),
        None,
        Duration::from_secs(2),
    );
    let lookup = dir.by_username("alice").await;
    assert!(is_unavailable(&lookup), "{lookup:?}");
}

#[tokio::test]
async fn the_bearer_token_is_sent_when_configured_and_only_then() {
    let (base, seen) = spawn_service().await;
    http(&base, Some("t0k3n"), Duration::from_secs(5))
        .by_username("alice")
        .await;
    http(&base, None, Duration::from_secs(5))
        .by_username("alice")
        .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].1.as_deref(), Some("Bearer t0k3n"));
    assert_eq!(seen[1].1, None);
}

#[tokio::test]
async fn odd_usernames_and_addresses_are_percent_encoded() {
    let (base, seen) = spawn_service().await;
    let dir = http(&base, None, Duration::from_secs(5));
    assert_eq!(dir.by_username("odd/na me?#%+ü").await, Lookup::NotFound);
    assert_eq!(dir.by_address("a+tag@example.org").await, Lookup::NotFound);
    assert_eq!(dir.by_username("..").await, Lookup::NotFound);
    let paths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/accounts/by-username/odd%2Fna%20me%3F%23%25%2B%C3%BC",
            "/accounts/by-address/a%2Btag%40example.org",
        ],
        "`..` is no account and is never sent"
    );
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    let (base, seen) = spawn_service().await;
    let dir = http(&format!("{base}/api/"), None, Duration::from_secs(5));
    assert_eq!(dir.by_username("alice").await, Lookup::Found(alice()));
    assert_eq!(seen.lock().unwrap()[0].0, "/api/accounts/by-username/alice");
}

fn settings(toml_text: &str) -> DirectorySettings {
    #[derive(serde::Deserialize)]
    struct Config {
        directory: DirectorySettings,
    }
    toml::from_str::<Config>(toml_text).unwrap().directory
}

#[tokio::test]
async fn open_builds_the_http_directory_with_a_token_from_a_file() {
    let (base, seen) = spawn_service().await;
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(config_dir.path().join("directory.token"), "from-file\n").unwrap();
    let settings = settings(&format!(
        "[directory]\nkind = \"http\"\nbase_url = \"{base}\"\n\
         token = {{ file = \"directory.token\" }}\ntimeout = \"2s\"\n"
    ));
    let dir = directory::open(&settings, config_dir.path()).unwrap();
    assert_eq!(dir.by_username("alice").await, Lookup::Found(alice()));
    assert_eq!(
        seen.lock().unwrap()[0].1.as_deref(),
        Some("Bearer from-file")
    );

    let missing_token = settings_with_missing_token(&base);
    let err = directory::open(&missing_token, config_dir.path())
        .err()
        .unwrap();
    assert!(err.to_string().contains("directory.token"), "{err}");
}

fn settings_with_missing_token(base: &str) -> DirectorySettings {
    settings(&format!(
        "[directory]\nkind = \"http\"\nbase_url = \"{base}\"\ntoken = {{ file = \"absent\" }}\n"
    ))
}

#[tokio::test]
async fn check_reports_health_for_a_doctor_command() {
    let (base, _) = spawn_service().await;
    let dir = http(&base, None, Duration::from_secs(5));
    let made_up = directory::check(&dir, None).await;
    assert!(made_up.is_ok(), "{made_up:?}");
    let probe = directory::check(&dir, Some("alice")).await.unwrap();
    assert!(
        probe.contains("a***@e***.org") && !probe.contains("alice@"),
        "{probe}"
    );
    assert!(directory::check(&dir, Some("nobody")).await.is_err());
    assert!(directory::check(&dir, Some("boom")).await.is_err());
}

async fn file_directory(name: &str, text: &str) -> (tempfile::TempDir, Arc<dyn Directory>) {
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(config_dir.path().join(name), text).unwrap();
    let settings = settings(&format!(
        "[directory]\nkind = \"file\"\npath = \"{name}\"\n"
    ));
    let dir = directory::open(&settings, config_dir.path()).unwrap();
    (config_dir, dir)
}

#[tokio::test]
async fn the_toml_and_csv_files_describe_the_same_account() {
    let toml_text = r#"
        [[account]]
        username = "alice"
        two_factor = ["totp"]
        has_recovery_codes = true
        projects = ["alice-utils"]
        addresses = [{ address = "alice@example.org", verified = true, primary = true }]
    "#;
    let csv_text = "username,address,verified,primary,two_factor,recovery_codes,projects\n\
                    alice,alice@example.org,true,true,totp,true,alice-utils\n";
    for (name, text) in [("accounts.toml", toml_text), ("accounts.csv", csv_text)] {
        let (_keep, dir) = file_directory(name, text).await;
        assert_eq!(
            dir.by_username("Alice").await,
            Lookup::Found(alice()),
            "{name}"
        );
        assert_eq!(
            dir.by_address("ALICE@example.org").await,
            Lookup::Found(alice()),
            "{name}"
        );
        assert_eq!(dir.by_username("bob").await, Lookup::NotFound, "{name}");
    }
}

#[test]
fn a_broken_file_is_a_config_error_naming_it() {
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(config_dir.path().join("accounts.csv"), "user,address\n").unwrap();
    for name in ["accounts.csv", "absent.toml"] {
        let settings = DirectorySettings::File { path: name.into() };
        let err = directory::open(&settings, config_dir.path()).err().unwrap();
        assert!(
            matches!(err, recoverydesk::error::Error::Config(_)),
            "{err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    // An absolute path ignores the base folder.
    let absolute = config_dir.path().join("accounts.csv");
    let settings = DirectorySettings::File {
        path: absolute.clone(),
    };
    let err = directory::open(&settings, Path::new("/nonexistent"))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&absolute.display().to_string()),
        "{err}"
    );
}
