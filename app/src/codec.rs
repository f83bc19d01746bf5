//! One JSON reader for everything the browser decodes: server functions'
//! answers (which `server_fn` reads from bytes), the resources serialized
//! into the page, the WebSocket's frames and the polled event pages.
//! serde_json compiles every `Deserialize` once per reader type, so reading
//! resources and frames from `&str` (Leptos's default codec) beside server
//! functions' bytes would ship every protocol type's decoder twice.

use leptos::server::codee::{Decoder, Encoder};
use serde::{Serialize, de::DeserializeOwned};

/// The resources' codec: JSON text, read as bytes.
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        decode(text.as_bytes())
    }
}

/// Reads JSON the one way the browser build does.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codec_round_trips_and_reports_bad_json() {
        let text = <Json as Encoder<Vec<u32>>>::encode(&vec![1, 2, 3]).unwrap();
        assert_eq!(text, "[1,2,3]");
        let back: Vec<u32> = <Json as Decoder<Vec<u32>>>::decode(&text).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
        assert!(<Json as Decoder<Vec<u32>>>::decode("[1,").is_err());
    }
}
