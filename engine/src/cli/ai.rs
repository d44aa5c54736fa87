//! `ringway ai models`: the models a config serves, as the gateway
//! resolves them: each model's targets in the order they are tried, with
//! their provider's type and upstream, and who may use the model.

use std::path::Path;
use std::process::ExitCode;

use ringway_config::{AiStrategy, Config, DEFAULT_CONFIG};
use serde_json::json;

/// Prints the models of `file` (the embedded default without one), as
/// text or, with `json`, as one JSON document.
pub fn models(file: Option<&Path>, as_json: bool) -> ExitCode {
    let loaded = match file {
        Some(p) => Config::from_file(p).map_err(|e| e.with_file(&p.display().to_string())),
        None => Config::from_toml_str(DEFAULT_CONFIG).map_err(|e| e.to_string()),
    };
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringway: invalid config:\n{e}");
            return ExitCode::from(1);
        }
    };
    let models: Vec<serde_json::Value> = config
        .ai_models
        .iter()
        .map(|m| {
            let mut targets: Vec<_> = m.targets.iter().collect();
            // The order they are tried in (a weighted model draws the first).
            targets.sort_by_key(|t| t.priority);
            json!({
                "name": m.name,
                "strategy": match m.strategy {
                    AiStrategy::Fallback => "fallback",
                    AiStrategy::Weighted => "weighted",
                },
                "max_tokens_default": m.max_tokens_default.map(|n| n.get()),
                "allow_groups": m.allow_groups,
                "targets": targets.iter().map(|t| {
                    let p = &config.ai_providers[t.provider];
                    json!({
                        "provider": p.name,
                        "type": p.kind.as_str(),
                        "upstream": config.upstreams[p.upstream].name,
                        "model": t.model,
                        "priority": t.priority,
                        "weight": t.weight.get(),
                        "keys": p.keys.len(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    if as_json {
        println!("{}", json!({ "models": models }));
        return ExitCode::SUCCESS;
    }
    if models.is_empty() {
        println!("no [[ai-models]] in this config");
    }
    for m in &models {
        let groups = m["allow_groups"].as_array().map_or(0, Vec::len);
        println!(
            "{}  strategy={}  max-tokens-default={}  groups={}",
            m["name"].as_str().unwrap_or(""),
            m["strategy"].as_str().unwrap_or(""),
            m["max_tokens_default"],
            if groups == 0 {
                "everyone".to_string()
            } else {
                m["allow_groups"].to_string()
            }
        );
        for t in m["targets"].as_array().into_iter().flatten() {
            println!(
                "  priority {:<4} weight {:<5} {} ({}, upstream {}, {} key(s))  model {}",
                t["priority"],
                t["weight"],
                t["provider"].as_str().unwrap_or(""),
                t["type"].as_str().unwrap_or(""),
                t["upstream"].as_str().unwrap_or(""),
                t["keys"],
                t["model"].as_str().unwrap_or(""),
            );
        }
    }
    ExitCode::SUCCESS
}
