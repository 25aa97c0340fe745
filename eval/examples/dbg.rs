fn main() {
    let body = veil_eval::mixed::clean_json(veil_eval::SEED, 1 << 20);
    let (mut all, mut kept) = (0, 0);
    veil_engine::detectors::digit_runs(&body, |_| all += 1);
    veil_engine::detectors::candidate_digit_runs(&body, |_| kept += 1);
    println!(
        "runs {all}, gate {}, kept {kept}",
        veil_engine::detectors::digits_count()
    );
}
