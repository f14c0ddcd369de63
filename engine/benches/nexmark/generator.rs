//! A deterministic Nexmark event generator, after the Beam/Flink Nexmark generator's rules
//! and defaults: of every 50 events 1 is a new person, 3 are new auctions and 46 are bids;
//! events come at 10,000 per second of event time, in order; an auction's seller and a
//! bid's bidder are recent people (a quarter of the time one of a few hot ones), a bid's
//! auction a recent auction (half of the time a hot one); prices are log-uniform
//! (`10^(6 r) * 100` cents); `extra` pads each event kind to Nexmark's average sizes
//! (person 200, auction 500, bid 100 bytes).
//!
//! One CSV file per partition holds all three kinds in Flink's one-stream layout: the event
//! type, the person's, auction's and bid's columns (empty for the other kinds), and the
//! event time.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const PROPORTION_DENOMINATOR: u64 = 50;
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
/// Hot entities are the first of each block of this many.
const HOT_BLOCK: u64 = 100;
/// One in this many picks is not a hot one (Nexmark's hot ratios).
const HOT_SELLER_RATIO: u64 = 4;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_BIDDER_RATIO: u64 = 4;
/// Recent people an auction's seller or a bid's bidder is drawn from.
const ACTIVE_PEOPLE: u64 = 1000;
/// Recent auctions a bid is for.
const IN_FLIGHT_AUCTIONS: u64 = 100;
/// Events per second of event time (Nexmark's first event rate).
pub const EVENTS_PER_SECOND: u64 = 10_000;
/// 2025-11-24 10:00:00 UTC.
const START_MS: u64 = 1_763_978_400_000;

const FIRST_NAMES: &[&str] = &[
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: &[&str] = &[
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: &[&str] = &[
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: &[&str] = &["AZ", "CA", "ID", "OR", "WA", "WY"];
const CHANNELS: &[&str] = &["Google", "Facebook", "Baidu", "Apple"];

/// The CSV columns, in order, as `CREATE TABLE` declares them.
pub const COLUMNS: &str = "event_type INT,
    p_id BIGINT, p_name STRING, p_email STRING, p_credit_card STRING, p_city STRING,
    p_state STRING, p_extra STRING,
    a_id BIGINT, a_item_name STRING, a_description STRING, a_initial_bid BIGINT,
    a_reserve BIGINT, a_expires TIMESTAMP(3), a_seller BIGINT, a_category BIGINT,
    a_extra STRING,
    b_auction BIGINT, b_bidder BIGINT, b_price BIGINT, b_channel STRING, b_url STRING,
    b_extra STRING,
    date_time TIMESTAMP(3)";

struct Random(u64);

impl Random {
    fn below(&mut self, m: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % m.max(1)
    }

    fn unit(&mut self) -> f64 {
        self.below(1 << 30) as f64 / (1u64 << 30) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    fn letters(&mut self, n: usize, out: &mut String) {
        for _ in 0..n {
            out.push((b'a' + self.below(26) as u8) as char);
        }
    }

    /// Nexmark's price: log-uniform between 100 and 10^8 cents.
    fn price(&mut self) -> u64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as u64
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm`.
fn timestamp(ms: u64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// How many people and auctions exist once `events` events have been generated.
fn counts(events: u64) -> (u64, u64) {
    let epochs = events / PROPORTION_DENOMINATOR;
    let offset = events % PROPORTION_DENOMINATOR;
    let people = epochs * PERSON_PROPORTION + offset.min(PERSON_PROPORTION);
    let auctions = epochs * AUCTION_PROPORTION
        + offset
            .saturating_sub(PERSON_PROPORTION)
            .min(AUCTION_PROPORTION);
    (people, auctions)
}

/// A recent entity among `count` so far (`ratio - 1` times in `ratio` a hot one: the first
/// of the latest block of [`HOT_BLOCK`]), as Nexmark picks sellers, bidders and auctions.
fn recent(random: &mut Random, count: u64, active: u64, ratio: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    if random.below(ratio) > 0 {
        return (count - 1) / HOT_BLOCK * HOT_BLOCK;
    }
    let window = count.min(active);
    count - 1 - random.below(window)
}

/// Writes `events` events dealt in turn into `paths`.
pub fn generate(paths: &[PathBuf], events: u64) -> std::io::Result<()> {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut outs = paths
        .iter()
        .map(|p| Ok(BufWriter::with_capacity(1 << 20, std::fs::File::create(p)?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut line = String::with_capacity(1024);
    let letters = |random: &mut Random, n: usize| {
        let mut s = String::with_capacity(n);
        random.letters(n, &mut s);
        s
    };
    for n in 0..events {
        let ms = START_MS + n * 1000 / EVENTS_PER_SECOND;
        let (people, auctions) = counts(n);
        let kind = n % PROPORTION_DENOMINATOR;
        // The 23 columns before the event time.
        let mut fields = vec![String::new(); 23];
        if kind < PERSON_PROPORTION {
            fields[0] = "0".into();
            fields[1] = (FIRST_PERSON_ID + people).to_string();
            fields[2] = format!("{} {}", random.pick(FIRST_NAMES), random.pick(LAST_NAMES));
            fields[3] = format!(
                "{}@{}.com",
                letters(&mut random, 7),
                letters(&mut random, 5)
            );
            fields[4] = (0..4)
                .map(|_| format!("{:04}", random.below(10_000)))
                .collect::<Vec<_>>()
                .join(" ");
            fields[5] = random.pick(CITIES).into();
            fields[6] = random.pick(STATES).into();
            fields[7] = letters(&mut random, 120);
        } else if kind < PERSON_PROPORTION + AUCTION_PROPORTION {
            let initial = random.price();
            fields[0] = "1".into();
            fields[8] = (FIRST_AUCTION_ID + auctions).to_string();
            fields[9] = letters(&mut random, 20);
            fields[10] = letters(&mut random, 100);
            fields[11] = initial.to_string();
            fields[12] = (initial + random.price()).to_string();
            fields[13] = timestamp(ms + 2_000 + random.below(20_000));
            fields[14] = (FIRST_PERSON_ID
                + recent(&mut random, people, ACTIVE_PEOPLE, HOT_SELLER_RATIO))
            .to_string();
            fields[15] = (FIRST_CATEGORY_ID + random.below(NUM_CATEGORIES)).to_string();
            fields[16] = letters(&mut random, 280);
        } else {
            fields[0] = "2".into();
            fields[17] = (FIRST_AUCTION_ID
                + recent(&mut random, auctions, IN_FLIGHT_AUCTIONS, HOT_AUCTION_RATIO))
            .to_string();
            fields[18] = (FIRST_PERSON_ID
                + recent(&mut random, people, ACTIVE_PEOPLE, HOT_BIDDER_RATIO))
            .to_string();
            fields[19] = random.price().to_string();
            fields[20] = random.pick(CHANNELS).into();
            fields[21] = format!("https://www.nexmark.com/{}", letters(&mut random, 8));
            fields[22] = letters(&mut random, 24);
        }
        line.clear();
        for f in &fields {
            line.push_str(f);
            line.push(',');
        }
        line.push_str(&timestamp(ms));
        line.push('\n');
        outs[(n % paths.len() as u64) as usize].write_all(line.as_bytes())?;
    }
    for out in &mut outs {
        out.flush()?;
    }
    Ok(())
}
