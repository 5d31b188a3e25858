//! Operating the stack: the app-server's readiness and metrics as a probe
//! and Prometheus see them, and the operator's live dashboard in a real
//! browser.

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    Stack, TwoPages, http_get, http_get_until, screenshot_path, sign_in_as_operator, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_metrics_follow_the_service_connection() {
    let mut stack = Stack::start().await;
    let port = stack.app_port;
    let (_, ready) = http_get_until(port, "/readyz", false, |status, _| status == 200).await;
    assert_eq!(ready, "{\"ready\":true}");
    assert_eq!(http_get(port, "/healthz", false).await.0, 200);

    assert_eq!(http_get(port, "/rooms/lobby?name=Ada", false).await.0, 200);
    assert_eq!(http_get(port, "/nowhere", false).await.0, 404);
    // Metrics are the operator's: the API key is asked for.
    assert_eq!(http_get(port, "/metrics", false).await.0, 401);
    let (status, text) = http_get(port, "/metrics", true).await;
    assert_eq!(status, 200);
    for line in [
        "duplex_app_http_requests_total{route=\"/rooms/{room}\",method=\"GET\",status=\"200\"} 1",
        "duplex_app_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "duplex_app_http_request_duration_seconds_count{route=\"/rooms/{room}\"} 1",
        "duplex_app_service_connection_up 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }

    // The ws-server goes away: not ready, and the metrics say why.
    stack.stop_ws().await;
    let (_, body) = http_get_until(port, "/readyz", false, |status, _| status == 503).await;
    assert!(
        body.contains("service connection to the ws-server is down"),
        "{body}"
    );
    let (_, text) = http_get(port, "/metrics", true).await;
    assert!(
        text.lines()
            .any(|l| l == "duplex_app_service_connection_up 0"),
        "{text}"
    );

    stack.start_ws().await;
    http_get_until(port, "/readyz", false, |status, _| status == 200).await;
    stack.stop().await;
}

/// The headline figure `testid` reads `value`.
fn figure(testid: &str, value: &str) -> String {
    format!("//*[@data-testid='{testid}'][normalize-space(.)='{value}']")
}

/// The room table's row for `room` says `members`.
fn room_row(room: &str, members: usize) -> String {
    format!("//*[@data-testid='room-row'][@data-room='{room}'][@data-members='{members}']")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_connections_and_rooms_as_they_change() {
    let pages = TwoPages::open("lobby").await;
    let origin = pages.stack.localhost("");
    let operator = pages.driver.browser().await;
    // Tall enough for the whole dashboard in its screenshot.
    operator.set_window_size(1280, 1800).await.unwrap();

    // Not signed in: the dashboard leads to the sign-in.
    operator.goto(&format!("{origin}/dashboard")).await.unwrap();
    wait_for(&operator, "//*[@data-testid='operator-form']").await;
    sign_in_as_operator(&operator, &origin).await;
    operator.goto(&format!("{origin}/dashboard")).await.unwrap();

    // Ada and Bob, one room, one instance; the third connection is the
    // app-server's own (publishing, the room directory).
    wait_for(&operator, &figure("total-connections", "3")).await;
    wait_for(&operator, &room_row("lobby", 2)).await;
    wait_for(
        &operator,
        "//*[@data-testid='dashboard-status'][@data-state='live']",
    )
    .await;
    let instance = format!(
        "//*[@data-testid='instance'][@data-url='http://127.0.0.1:{}']",
        pages.stack.ws_admin_port
    );
    wait_for(&operator, &instance).await;
    // A few points on the charts, then the picture.
    let snapshots = "return (window.duplexDashboard || {}).snapshots || 0;";
    let deadline = tokio::time::Instant::now() + common::UI_DEADLINE;
    while operator.execute(snapshots, vec![]).await.unwrap().as_u64() < Some(4) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dashboard stopped updating"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let png = operator.screenshot().await.unwrap();
    std::fs::write(screenshot_path("dashboard"), png).unwrap();

    // Bob leaves: the same page, not reloaded, follows.
    operator
        .execute("window.sameDashboard = true;", vec![])
        .await
        .unwrap();
    let TwoPages {
        stack,
        ada,
        bob,
        driver,
    } = pages;
    bob.close().await.unwrap();
    wait_for(&operator, &figure("total-connections", "2")).await;
    wait_for(&operator, &room_row("lobby", 1)).await;
    let same = operator
        .execute("return window.sameDashboard === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, serde_json::Value::Bool(true), "the page was reloaded");

    operator.close().await.unwrap();
    ada.close().await.unwrap();
    drop(driver);
    stack.stop().await;
}
