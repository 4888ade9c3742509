//! What the graph did with each seed, by drop and event counters:
//! `cargo run --example peek -- fuzz/seeds/graph_wan/*` (a check that the
//! seeds reach past the first nodes).
use ipoe_dataplane::graph::NodeId;
use ipoe_dataplane::tables::Port;

fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("read the seed");
        let rx = if path.contains("graph_lan") {
            Port::Lan
        } else {
            Port::Wan
        };
        let Some(g) = ipoe_fuzz::graph::exercise(&data, rx) else {
            continue;
        };
        let mut counts = Vec::new();
        for n in NodeId::ALL {
            for (k, (name, _)) in n.errors().iter().enumerate() {
                let c = g.stats.nodes[n as usize].errors[k];
                if c > 0 {
                    counts.push(format!("{}/{name}={c}", n.name()));
                }
            }
        }
        let name = path.rsplit('/').next().unwrap_or(&path);
        println!("{name} {}", counts.join(" "));
    }
}
