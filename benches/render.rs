//! Micro-benchmarks: rendering and the change path, without I/O.
//! `cargo bench --bench render`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use weight_converter::i18n::Lang;
use weight_converter::session::number::parse_number;
use weight_converter::session::{Edit, Key, SessionId, Snapshot, ViewId, Weight};
use weight_converter::views::{ChangedBy, Links, change_response, converter_page, writer_event};

fn changed() -> Snapshot {
    let edit = Edit { key: Key::Lbs, typed: Weight::new(10.0), step: None };
    Snapshot::new().apply(edit).ok().flatten().unwrap_or_default()
}

fn render(c: &mut Criterion) {
    let sid = SessionId::random();
    let view = ViewId::random();
    let links = Links::writer("", &sid);
    let snapshot = changed();
    c.bench_function("render page", |b| {
        b.iter(|| {
            converter_page(Lang::English.texts(), &links, "/v/x", &view, black_box(&snapshot), None)
                .into_string()
        })
    });
    c.bench_function("render change response (other field + dump)", |b| {
        b.iter(|| change_response(black_box(&snapshot), Key::Lbs, ChangedBy::Typing).into_string())
    });
    c.bench_function("render stream event (both fields + dump)", |b| {
        b.iter(|| writer_event(black_box(&snapshot), Some(&view)).into_string())
    });
}

fn change(c: &mut Criterion) {
    let start = Snapshot::new();
    c.bench_function("parse + callback", |b| {
        b.iter(|| {
            let typed = parse_number(black_box("10.5")).ok().flatten();
            start.apply(Edit { key: Key::Lbs, typed, step: None })
        })
    });
}

criterion_group!(benches, render, change);
criterion_main!(benches);
