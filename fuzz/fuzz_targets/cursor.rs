//! A client-supplied page cursor (`Cursor::decode`, as `?cursor=` is read). Checks: a cursor
//! that decodes encodes to a token that decodes to the same cursor, and to that token again;
//! the query string's path (serde) agrees with `decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_store::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = Cursor::decode(token);
    let through_serde = serde_json::from_value::<Cursor>(serde_json::Value::from(token));
    assert_eq!(decoded.as_ref().ok(), through_serde.as_ref().ok());
    if let Ok(cursor) = decoded {
        let encoded = cursor.encode();
        let again = Cursor::decode(&encoded).expect("its own token is refused");
        assert_eq!(again, cursor);
        assert_eq!(again.encode(), encoded);
    }
});
