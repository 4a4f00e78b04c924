mod common;

#[tokio::test]
async fn a_new_session_starts_at_zero() {
    let app = common::spawn_app().await;
    let sid = app.new_session().await;
    assert_eq!(app.state_json(&sid).await, r#"{"lbs":0.0,"kg":0.0}"#);
}
