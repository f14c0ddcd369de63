//! Avro schemas as a small tree: printed as the JSON the registry holds, and used to write
//! random datums of them (Avro's binary encoding, written here independently).

use crate::rng::Rng;
use std::rc::Rc;

#[derive(Clone, Debug)]
pub struct AvField {
    pub name: String,
    pub ty: Av,
    /// The `default` as JSON text.
    pub default: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Av {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    Array(Box<Av>),
    Map(Box<Av>),
    Union(Vec<Av>),
    Record(String, Vec<AvField>),
    Enum(String, Vec<String>),
    Fixed(String, usize),
    /// A named type defined earlier, referenced by its name (shared: chains of references
    /// would otherwise copy the tree exponentially).
    Ref(String, Rc<Av>),
    /// An `int`/`long`/`string` with a logical type.
    Logical(Box<Av>, &'static str),
    Decimal(u32, u32),
}

fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl Av {
    pub fn json(&self) -> String {
        match self {
            Av::Null => "\"null\"".into(),
            Av::Boolean => "\"boolean\"".into(),
            Av::Int => "\"int\"".into(),
            Av::Long => "\"long\"".into(),
            Av::Float => "\"float\"".into(),
            Av::Double => "\"double\"".into(),
            Av::Bytes => "\"bytes\"".into(),
            Av::Str => "\"string\"".into(),
            Av::Array(items) => format!("{{\"type\":\"array\",\"items\":{}}}", items.json()),
            Av::Map(values) => format!("{{\"type\":\"map\",\"values\":{}}}", values.json()),
            Av::Union(branches) => format!(
                "[{}]",
                branches.iter().map(Av::json).collect::<Vec<_>>().join(",")
            ),
            Av::Record(name, fields) => format!(
                "{{\"type\":\"record\",\"name\":{},\"fields\":[{}]}}",
                quote(name),
                fields
                    .iter()
                    .map(|f| match &f.default {
                        Some(d) => format!(
                            "{{\"name\":{},\"type\":{},\"default\":{d}}}",
                            quote(&f.name),
                            f.ty.json()
                        ),
                        None => format!("{{\"name\":{},\"type\":{}}}", quote(&f.name), f.ty.json()),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Av::Enum(name, symbols) => format!(
                "{{\"type\":\"enum\",\"name\":{},\"symbols\":[{}]}}",
                quote(name),
                symbols
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Av::Fixed(name, size) => {
                format!(
                    "{{\"type\":\"fixed\",\"name\":{},\"size\":{size}}}",
                    quote(name)
                )
            }
            Av::Ref(name, _) => quote(name),
            Av::Logical(base, logical) => {
                format!("{{\"type\":{},\"logicalType\":\"{logical}\"}}", base.json())
            }
            Av::Decimal(precision, scale) => format!(
                "{{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":{precision},\"scale\":{scale}}}"
            ),
        }
    }

    /// Appends a random datum of this schema; one of an exponentially expanding schema is
    /// cut short (so then a truncated datum) after [`DATUM_VALUES`] values.
    pub fn datum(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        let mut budget = DATUM_VALUES;
        self.datum_within(rng, out, &mut budget);
    }

    fn datum_within(&self, rng: &mut Rng, out: &mut Vec<u8>, budget: &mut usize) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        match self {
            Av::Null => {}
            Av::Boolean => out.push(rng.below(2) as u8),
            Av::Int => long(out, rng.interesting_i32() as i64),
            Av::Long => long(out, rng.interesting_i64()),
            Av::Float => out.extend_from_slice(&(rng.next_u64() as f32).to_le_bytes()),
            Av::Double => out.extend_from_slice(&f64::from_bits(rng.next_u64()).to_le_bytes()),
            Av::Bytes => {
                let n = rng.below(12);
                long(out, n as i64);
                out.extend(rng.bytes(n));
            }
            Av::Str => {
                let s = rng.word();
                long(out, s.len() as i64);
                out.extend_from_slice(s.as_bytes());
            }
            Av::Array(items) => blocks(rng, out, |rng, out| items.datum_within(rng, out, budget)),
            Av::Map(values) => blocks(rng, out, |rng, out| {
                Av::Str.datum_within(rng, out, budget);
                values.datum_within(rng, out, budget);
            }),
            Av::Union(branches) => {
                let i = rng.below(branches.len());
                long(out, i as i64);
                branches[i].datum_within(rng, out, budget);
            }
            Av::Record(_, fields) => {
                for f in fields {
                    f.ty.datum_within(rng, out, budget);
                }
            }
            Av::Enum(_, symbols) => long(out, rng.below(symbols.len()) as i64),
            Av::Fixed(_, size) => out.extend(rng.bytes((*size).min(64))),
            Av::Ref(_, target) => target.datum_within(rng, out, budget),
            Av::Logical(base, "uuid") if matches!(**base, Av::Str) => {
                let s = "0c8a3e52-6a3b-4c47-9d0e-1f2a3b4c5d6e";
                long(out, s.len() as i64);
                out.extend_from_slice(s.as_bytes());
            }
            Av::Logical(base, _) => base.datum_within(rng, out, budget),
            Av::Decimal(..) => {
                let n = rng.range(1, 4);
                long(out, n as i64);
                out.extend(rng.bytes(n));
            }
        }
    }
}

/// Zigzag varint, as Avro writes `int` and `long`.
/// Most values in one datum.
const DATUM_VALUES: usize = 20_000;

pub fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Array or map blocks: a count, the items, and a zero count; sometimes with a negative
/// count and a byte size, as the spec allows.
fn blocks(rng: &mut Rng, out: &mut Vec<u8>, mut item: impl FnMut(&mut Rng, &mut Vec<u8>)) {
    for _ in 0..rng.below(3) {
        let n = rng.range(1, 3);
        let mut body = Vec::new();
        for _ in 0..n {
            item(rng, &mut body);
        }
        if rng.chance(1, 4) {
            long(out, -(n as i64));
            long(out, body.len() as i64);
        } else {
            long(out, n as i64);
        }
        out.extend(body);
    }
    long(out, 0);
}

fn field(name: &str, ty: Av) -> AvField {
    AvField {
        name: name.into(),
        ty,
        default: None,
    }
}

/// Writer schema version 0 of the decoder's topic: `legacy` is dropped later.
pub fn click_v1() -> Av {
    Av::Record(
        "Click".into(),
        vec![
            field("user_id", Av::Str),
            field("clicks", Av::Long),
            field("legacy", Av::Str),
        ],
    )
}

/// Version 1 (the reader): `country` added with a default.
pub fn click_v2() -> Av {
    Av::Record(
        "Click".into(),
        vec![
            field("user_id", Av::Str),
            field("clicks", Av::Long),
            AvField {
                name: "country".into(),
                ty: Av::Union(vec![Av::Null, Av::Str]),
                default: Some("null".into()),
            },
        ],
    )
}

/// Every kind of type arrow-avro reads, once.
pub fn rich() -> Av {
    let inner = Av::Record(
        "Inner".into(),
        vec![
            field("a", Av::Str),
            field("b", Av::Union(vec![Av::Null, Av::Long])),
        ],
    );
    Av::Record(
        "Rich".into(),
        vec![
            field("flag", Av::Boolean),
            field("i", Av::Int),
            field("l", Av::Long),
            field("f", Av::Float),
            field("d", Av::Double),
            field("raw", Av::Bytes),
            field("s", Av::Str),
            field("opt", Av::Union(vec![Av::Null, Av::Str])),
            field("list", Av::Array(Box::new(Av::Long))),
            field("dict", Av::Map(Box::new(Av::Int))),
            field(
                "color",
                Av::Enum(
                    "Color".into(),
                    vec!["RED".into(), "GREEN".into(), "BLUE".into()],
                ),
            ),
            field("hash", Av::Fixed("Hash".into(), 4)),
            field("inner", inner.clone()),
            field("again", Av::Ref("Inner".into(), Rc::new(inner))),
            field("day", Av::Logical(Box::new(Av::Int), "date")),
            field("ts", Av::Logical(Box::new(Av::Long), "timestamp-millis")),
            field("us", Av::Logical(Box::new(Av::Long), "timestamp-micros")),
            field("tm", Av::Logical(Box::new(Av::Int), "time-millis")),
            field("id", Av::Logical(Box::new(Av::Str), "uuid")),
            field("price", Av::Decimal(10, 2)),
        ],
    )
}

/// A random record schema. Named types defined earlier are referenced by name now and
/// then; in "chain" mode each record refers to the previous one twice (once by its
/// definition, once by name), which doubles the expanded schema at every level.
pub fn random_schema(rng: &mut Rng) -> Av {
    if rng.chance(1, 6) {
        let depth = rng.range(2, 18);
        let mut inner = Av::Record("L".into(), vec![field("x", Av::Int)]);
        let mut inner_name = "L".to_string();
        for i in 0..depth {
            let name = format!("R{i}");
            let mut fields = vec![field("a", inner.clone())];
            for k in 0..rng.range(1, 2) {
                fields.push(field(
                    &format!("b{k}"),
                    Av::Ref(inner_name.clone(), Rc::new(inner.clone())),
                ));
            }
            inner = Av::Record(name.clone(), fields);
            inner_name = name;
        }
        return inner;
    }
    let mut named = Vec::new();
    let mut counter = 0;
    record(rng, 0, &mut named, &mut counter)
}

fn record(rng: &mut Rng, depth: usize, named: &mut Vec<(String, Av)>, counter: &mut usize) -> Av {
    *counter += 1;
    let name = format!("T{counter}");
    let fields = (0..rng.range(0, 5))
        .map(|i| field(&format!("f{i}"), any(rng, depth + 1, named, counter)))
        .collect();
    let r = Av::Record(name.clone(), fields);
    named.push((name, r.clone()));
    r
}

fn any(rng: &mut Rng, depth: usize, named: &mut Vec<(String, Av)>, counter: &mut usize) -> Av {
    let leaf = depth > 4;
    match rng.below(if leaf { 10 } else { 16 }) {
        0 => Av::Null,
        1 => Av::Boolean,
        2 => Av::Int,
        3 => Av::Long,
        4 => Av::Double,
        5 => Av::Str,
        6 => Av::Bytes,
        7 => match rng.below(4) {
            0 => Av::Logical(Box::new(Av::Int), "date"),
            1 => Av::Logical(Box::new(Av::Long), "timestamp-millis"),
            2 => Av::Logical(Box::new(Av::Str), "uuid"),
            _ => Av::Decimal(rng.range(1, 40) as u32, rng.below(5) as u32),
        },
        8 => {
            *counter += 1;
            let name = format!("E{counter}");
            let e = Av::Enum(
                name.clone(),
                (0..rng.range(1, 4)).map(|i| format!("S{i}")).collect(),
            );
            named.push((name, e.clone()));
            e
        }
        9 => {
            *counter += 1;
            let name = format!("F{counter}");
            let f = Av::Fixed(name.clone(), rng.range(1, 16));
            named.push((name, f.clone()));
            f
        }
        10 => Av::Array(Box::new(any(rng, depth + 1, named, counter))),
        11 => Av::Map(Box::new(any(rng, depth + 1, named, counter))),
        12 => {
            let other = any(rng, depth + 1, named, counter);
            if matches!(other, Av::Null | Av::Union(_)) {
                Av::Union(vec![Av::Null, Av::Str])
            } else {
                Av::Union(vec![Av::Null, other])
            }
        }
        13 if !named.is_empty() => {
            let (name, target) = rng.pick(named).clone();
            Av::Ref(name, Rc::new(target))
        }
        _ => record(rng, depth, named, counter),
    }
}

/// JSON tokens worth splicing into a schema.
pub const SCHEMA_DICTIONARY: &[&[u8]] = &[
    b"\"type\"",
    b"\"record\"",
    b"\"array\"",
    b"\"items\"",
    b"\"map\"",
    b"\"values\"",
    b"\"fields\"",
    b"\"name\"",
    b"\"fixed\"",
    b"\"size\":2147483647",
    b"\"size\":-1",
    b"\"logicalType\":\"decimal\"",
    b"\"precision\":76",
    b"\"scale\":-1",
    b"\"namespace\":\"a.b\"",
    b"\"symbols\":[]",
    b"\"default\":",
    b"\"aliases\":[\"x\"]",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"\"null\"",
    b"\"long\"",
    b"\"T1\"",
    b"\"R0\"",
    b"1e309",
    b"-0",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
];
