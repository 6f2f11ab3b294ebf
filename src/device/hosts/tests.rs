//! The host documents' tests: parsing, editing, answers, capabilities and rendering.

use super::*;

const XML_LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<HttpHostNotificationList version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<HttpHostNotification>
<id>1</id>
<url>/alarm</url>
<protocolType>HTTP</protocolType>
<parameterFormatType>XML</parameterFormatType>
<addressingFormatType>ipaddress</addressingFormatType>
<ipAddress>192.0.2.10</ipAddress>
<portNo>8080</portNo>
<userName></userName>
<httpAuthenticationMethod>none</httpAuthenticationMethod>
<SubscribeEvent><heartbeat>30</heartbeat></SubscribeEvent>
</HttpHostNotification>
<HttpHostNotification>
<id>2</id>
<url>/</url>
<protocolType>HTTP</protocolType>
<ipAddress>0.0.0.0</ipAddress>
<portNo>80</portNo>
<userName/>
</HttpHostNotification>
</HttpHostNotificationList>"#;

const JSON_LIST: &str = r#"{"HttpHostNotificationList":[{"HttpHostNotification":{"id":"1","url":"/","protocolType":"HTTP","parameterFormatType":"JSON","addressingFormatType":"ipaddress","ipAddress":"0.0.0.0","portNo":80,"httpAuthenticationMethod":"none","eventMode":"all"}}]}"#;

#[test]
fn parses_xml_list_by_local_name() {
    let slots = parse_host_list(XML_LIST.as_bytes()).unwrap();
    assert_eq!(slots.len(), 2);
    assert_eq!(slots[0].id, "1");
    assert_eq!(slots[0].url, "/alarm");
    assert_eq!(slots[0].address(), "192.0.2.10");
    assert_eq!(slots[0].port, "8080");
    assert_eq!(slots[0].auth, "none");
    assert!(!slots[0].is_unused());
    assert_eq!(slots[1].id, "2");
    assert!(slots[1].is_unused());
    assert_eq!(slots[1].user_name, "");
}

#[test]
fn parses_json_list_variants() {
    let table: [(&str, usize, &str); 4] = [
        (JSON_LIST, 1, "80"),
        (
            r#"{"HttpHostNotificationList":{"HttpHostNotification":[{"id":1,"portNo":"81"},{"id":2,"portNo":82}]}}"#,
            2,
            "81",
        ),
        (
            r#"{"HttpHostNotificationList":[{"id":"1","portNo":83}]}"#,
            1,
            "83",
        ),
        (
            r#"{"HttpHostNotification":{"id":"1","portNo":84}}"#,
            1,
            "84",
        ),
    ];
    for (doc, n, port) in table {
        let slots = parse_host_list(doc.as_bytes()).unwrap();
        assert_eq!(slots.len(), n, "{doc}");
        assert_eq!(slots[0].port, port, "{doc}");
        assert_eq!(slots[0].id, "1", "{doc}");
    }
}

#[test]
fn rejects_non_documents() {
    assert_eq!(parse_host_list(b"hello"), Err(DocError::NotXmlOrJson));
    assert_eq!(
        parse_host_list(b"<html><body>login</body></html>"),
        Err(DocError::Missing("HttpHostNotificationList"))
    );
    assert!(matches!(
        parse_host_list(b"{\"a\":"),
        Err(DocError::Json(_))
    ));
}

#[test]
fn xml_edit_replaces_values_and_keeps_everything_else() {
    let change = SlotChange {
        address: Some("198.51.100.7".into()),
        port: Some(9000),
        ..Default::default()
    };
    let out = edit_host_list(XML_LIST.as_bytes(), "1", &change).unwrap();
    let expected = XML_LIST
        .replace(
            "<ipAddress>192.0.2.10</ipAddress>",
            "<ipAddress>198.51.100.7</ipAddress>",
        )
        .replace("<portNo>8080</portNo>", "<portNo>9000</portNo>");
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn xml_edit_inserts_missing_elements_in_schema_order() {
    let change = SlotChange {
        address: Some("alarms.example.net".into()),
        format: Some("json".into()),
        ..Default::default()
    };
    let out =
        String::from_utf8(edit_host_list(XML_LIST.as_bytes(), "2", &change).unwrap()).unwrap();
    // Slot 2 has no parameterFormatType, addressingFormatType or hostName: all go before
    // <ipAddress>, in schema order.
    let expected_slot2 = "<protocolType>HTTP</protocolType>\n<parameterFormatType>JSON</parameterFormatType><addressingFormatType>hostname</addressingFormatType><hostName>alarms.example.net</hostName><ipAddress>0.0.0.0</ipAddress>";
    assert!(out.contains(expected_slot2), "{out}");
    // Slot 1 untouched.
    assert!(out.contains("<ipAddress>192.0.2.10</ipAddress>"));
    let slots = parse_host_list(out.as_bytes()).unwrap();
    assert_eq!(slots[1].address(), "alarms.example.net");
    assert_eq!(slots[1].format, "JSON");
}

#[test]
fn xml_edit_expands_empty_element_and_escapes() {
    let doc = "<HttpHostNotificationList><HttpHostNotification><id>3</id><url/><portNo>80</portNo></HttpHostNotification></HttpHostNotificationList>";
    let change = SlotChange {
        url: Some("in?a=1&b=2".into()),
        ..Default::default()
    };
    let out = String::from_utf8(edit_host_list(doc.as_bytes(), "3", &change).unwrap()).unwrap();
    assert_eq!(
        out,
        "<HttpHostNotificationList><HttpHostNotification><id>3</id><url>/in?a=1&amp;b=2</url><portNo>80</portNo></HttpHostNotification></HttpHostNotificationList>"
    );
}

#[test]
fn edit_unknown_slot_is_an_error() {
    let change = SlotChange {
        port: Some(1),
        ..Default::default()
    };
    assert_eq!(
        edit_host_list(XML_LIST.as_bytes(), "9", &change),
        Err(DocError::NoSuchSlot("9".into()))
    );
    assert_eq!(
        edit_host_list(JSON_LIST.as_bytes(), "9", &change),
        Err(DocError::NoSuchSlot("9".into()))
    );
}

#[test]
fn json_edit_keeps_types_and_unknown_keys() {
    let change = SlotChange {
        address: Some("127.0.0.1".into()),
        port: Some(8099),
        url: Some("push".into()),
        protocol: Some("https".into()),
        ..Default::default()
    };
    let out = edit_host_list(JSON_LIST.as_bytes(), "1", &change).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let slot = &v["HttpHostNotificationList"][0]["HttpHostNotification"];
    assert_eq!(slot["portNo"], Value::from(8099));
    assert_eq!(slot["ipAddress"], Value::from("127.0.0.1"));
    assert_eq!(slot["url"], Value::from("/push"));
    assert_eq!(slot["protocolType"], Value::from("HTTPS"));
    assert_eq!(slot["eventMode"], Value::from("all"));
    assert_eq!(slot["parameterFormatType"], Value::from("JSON"));
}

#[test]
fn ipv6_address_goes_to_ipv6_element() {
    let change = SlotChange {
        address: Some("[2001:db8::5]".into()),
        ..Default::default()
    };
    assert_eq!(
        change.assignments(),
        vec![
            ("addressingFormatType", "ipaddress".to_string()),
            ("ipv6Address", "2001:db8::5".to_string())
        ]
    );
}

#[test]
fn diff_lists_changed_fields() {
    let before = parse_host_list(XML_LIST.as_bytes()).unwrap();
    let mut after = before.clone();
    after[0].port = "9000".into();
    after[1].url = "/x".into();
    let d = diff_slots(&before, &after);
    assert_eq!(
        d,
        vec![
            SlotDiff {
                id: "1".into(),
                field: "portNo",
                before: "8080".into(),
                after: "9000".into()
            },
            SlotDiff {
                id: "2".into(),
                field: "url",
                before: "/".into(),
                after: "/x".into()
            },
        ]
    );
}

#[test]
fn response_status_xml_and_json() {
    let xml = r#"<ResponseStatus version="2.0" xmlns="http://www.std-cgi.com/ver20/XMLSchema">
<requestURL>/ISAPI/Event/notification/httpHosts</requestURL><statusCode>6</statusCode>
<statusString>Invalid Content</statusString><subStatusCode>badParameters</subStatusCode></ResponseStatus>"#;
    let rs = parse_response_status(xml.as_bytes()).unwrap();
    assert_eq!(rs.status_code, Some(6));
    assert!(!rs.is_ok());
    assert_eq!(
        rs.describe(),
        "statusCode 6 (Invalid Content), subStatusCode badParameters"
    );
    let json = r#"{"requestURL":"/x","statusCode":1,"statusString":"OK","subStatusCode":"ok"}"#;
    let rs = parse_response_status(json.as_bytes()).unwrap();
    assert!(rs.is_ok());
    let wrapped = r#"{"ResponseStatus":{"statusCode":4,"subStatusCode":"notSupport","errorMsg":"notSupport"}}"#;
    let rs = parse_response_status(wrapped.as_bytes()).unwrap();
    assert_eq!(
        rs.describe(),
        "statusCode 4 (Invalid Operation), subStatusCode notSupport, notSupport"
    );
    assert_eq!(parse_response_status(XML_LIST.as_bytes()), None);
}

#[test]
fn caps_summary_from_xml_attributes() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<HttpHostNotificationCap version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<hostNumber>2</hostNumber>
<urlLen max="128"/>
<protocolType opt="HTTP,HTTPS"/>
<parameterFormatType opt="XML,JSON"/>
<addressingFormatType opt="ipaddress,hostname"/>
<ipAddress opt="ipv4,ipv6"/>
<portNo min="1" max="65535"/>
<httpAuthenticationMethod opt="none,MD5digest"/>
<uploadImagesDataType opt="URL,binary"/>
<httpBroken opt="true,false" def="true"/>
<SubscribeEventCap><heartbeat min="1" max="30"/></SubscribeEventCap>
</HttpHostNotificationCap>"#;
    let rows = caps_summary(&parse_caps(xml.as_bytes()).unwrap());
    let get = |l: &str| {
        rows.iter()
            .find(|(k, _)| k == l)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("Host slots"), "2");
    assert_eq!(get("Protocols"), "HTTP, HTTPS");
    assert_eq!(get("Formats (parameterFormatType)"), "XML, JSON");
    assert_eq!(get("Port range"), "1-65535");
    assert_eq!(get("URL length"), "up to 128");
    assert_eq!(get("Authentication methods"), "none, MD5digest");
    assert_eq!(get("Picture upload types"), "URL, binary");
    assert_eq!(
        get("Resend after break (httpBroken)"),
        "true, false (default true)"
    );
    assert_eq!(get("SubscribeEventCap.heartbeat"), "1-30");
}

#[test]
fn caps_from_json() {
    let json = r#"{"HttpHostNotificationCap":{"hostNumber":1,"protocolType":{"@opt":["HTTP","HTTPS"]},"portNo":{"@min":1,"@max":65535},"parameterFormatType":{"@opt":"JSON"}}}"#;
    let rows = caps_summary(&parse_caps(json.as_bytes()).unwrap());
    assert!(
        rows.contains(&("Host slots".into(), "1".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("Protocols".into(), "HTTP, HTTPS".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("Port range".into(), "1-65535".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("Formats (parameterFormatType)".into(), "JSON".into())),
        "{rows:?}"
    );
}

#[test]
fn test_result_error_text() {
    let xml = "<HttpHostTestResult><errorDescription>connect server fail</errorDescription></HttpHostTestResult>";
    assert_eq!(
        parse_test_result(xml.as_bytes()).unwrap().error,
        "connect server fail"
    );
    let ok = "<HttpHostTestResult><errorDescription>ok</errorDescription></HttpHostTestResult>";
    assert_eq!(parse_test_result(ok.as_bytes()).unwrap().error, "");
}

#[test]
fn render_round_trips() {
    let slots = parse_host_list(XML_LIST.as_bytes()).unwrap();
    for f in [ApiFormat::Xml, ApiFormat::Json] {
        let doc = render_host_list(&slots, f);
        assert_eq!(sniff_format(&doc), Some(f));
        assert_eq!(parse_host_list(&doc).unwrap(), slots);
    }
    for f in [ApiFormat::Xml, ApiFormat::Json] {
        let one = render_slot(&slots[1], f);
        assert_eq!(parse_host_list(&one).unwrap(), vec![slots[1].clone()]);
    }
    let rs =
        parse_response_status(&render_response_status("/a", 1, "ok", ApiFormat::Json)).unwrap();
    assert!(rs.is_ok());
    let rs = parse_response_status(&render_response_status(
        "/a",
        4,
        "notSupport",
        ApiFormat::Xml,
    ))
    .unwrap();
    assert_eq!(
        (rs.status_code, rs.sub_status_code.as_str()),
        (Some(4), "notSupport")
    );
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_answers(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_host_list(&body);
            let _ = parse_caps(&body);
            let _ = parse_response_status(&body);
            let _ = parse_test_result(&body);
            let change = SlotChange { port: Some(1), address: Some("h".into()), ..Default::default() };
            let _ = edit_host_list(&body, "1", &change);
        }

        #[test]
        fn edit_then_parse_shows_the_change(port in 1u16.., last in 0u8.., json in any::<bool>(), id in 1usize..3) {
            let slots: Vec<HostSlot> = (1..=2).map(|i| HostSlot {
                id: i.to_string(), url: "/".into(), protocol: "HTTP".into(), format: "XML".into(),
                addressing: "ipaddress".into(), ip_address: "0.0.0.0".into(), port: "80".into(),
                auth: "none".into(), ..Default::default()
            }).collect();
            let f = if json { ApiFormat::Json } else { ApiFormat::Xml };
            let doc = render_host_list(&slots, f);
            let addr = format!("198.51.100.{last}");
            let change = SlotChange { port: Some(port), address: Some(addr.clone()), ..Default::default() };
            let out = edit_host_list(&doc, &id.to_string(), &change).unwrap();
            let after = parse_host_list(&out).unwrap();
            prop_assert_eq!(&after[id - 1].ip_address, &addr);
            prop_assert_eq!(&after[id - 1].port, &port.to_string());
            // The other slot is untouched.
            prop_assert_eq!(&after[2 - id], &slots[2 - id]);
        }
    }
}
