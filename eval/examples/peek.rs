use veil_engine::{CompiledPolicy, Direction, Target};
fn main() {
    let id = std::env::args().nth(1).unwrap();
    let body = veil_eval::mixed::mixed_json(veil_eval::SEED, 1 << 20);
    let bundle = format!(
        r#"{{"version":1,"metadata":{{"name":"p","revision":"1"}},"rules":[{{"id":"{id}","category":"c","detector":{{"builtin":"{id}"}},"action":"alert"}}]}}"#
    );
    let p = CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
    for f in p
        .scan(
            Direction::Request,
            Target::Body {
                content_type: Some("application/json"),
            },
            &body,
        )
        .iter()
        .take(8)
    {
        let s = f.start.saturating_sub(40);
        println!(
            "{}",
            String::from_utf8_lossy(&body[s..(f.end + 5).min(body.len())])
        );
    }
}
