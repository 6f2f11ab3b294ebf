"""Event bodies shared by record.py (real captures), craft.py (crafted captures) and
expected.py (expected verdicts). Stdlib only; deterministic (fixed seeds, fixed dates) so that
regenerating gives byte-identical bodies and the part sizes in expected.json stay true.

Everything a device sends is built here: XML EventNotificationAlert bodies (hikvision ver20
namespace), JSON bodies (AccessControllerEvent, heartBeat) and ANPR multipart bodies whose
pictures are JPEG SOI/EOI markers around pseudo-random bytes.
"""

import json
import random

NS = "http://www.hikvision.com/ver20/XMLSchema"
DEVICE_MAC = "44:19:b6:3a:5c:7e"
ANPR_MAC = "bc:ad:28:91:0f:42"
ACS_MAC = "e0:ca:3c:12:8d:01"
BOUNDARY = "MIME_boundary"


def vmd_xml(ip, date_time, post_count=1, channel=1, state="active"):
    """Motion detection (VMD) alert, as a camera sends it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<EventNotificationAlert version="2.0" xmlns="{NS}">\r\n'
        f"<ipAddress>{ip}</ipAddress>\r\n"
        "<portNo>80</portNo>\r\n"
        "<protocol>HTTP</protocol>\r\n"
        f"<macAddress>{DEVICE_MAC}</macAddress>\r\n"
        f"<channelID>{channel}</channelID>\r\n"
        f"<dateTime>{date_time}</dateTime>\r\n"
        f"<activePostCount>{post_count}</activePostCount>\r\n"
        "<eventType>VMD</eventType>\r\n"
        f"<eventState>{state}</eventState>\r\n"
        "<eventDescription>Motion alarm</eventDescription>\r\n"
        f"<channelName>Camera {channel:02d}</channelName>\r\n"
        "</EventNotificationAlert>\r\n"
    ).encode()


def linedetection_xml(ip, date_time, post_count=1, channel=1):
    """Line crossing alert with its detection region and target rectangle."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<EventNotificationAlert version="2.0" xmlns="{NS}">\r\n'
        f"<ipAddress>{ip}</ipAddress>\r\n"
        "<portNo>80</portNo>\r\n"
        "<protocol>HTTP</protocol>\r\n"
        f"<macAddress>{DEVICE_MAC}</macAddress>\r\n"
        f"<channelID>{channel}</channelID>\r\n"
        f"<dateTime>{date_time}</dateTime>\r\n"
        f"<activePostCount>{post_count}</activePostCount>\r\n"
        "<eventType>linedetection</eventType>\r\n"
        "<eventState>active</eventState>\r\n"
        "<eventDescription>linedetection alarm</eventDescription>\r\n"
        f"<channelName>Camera {channel:02d}</channelName>\r\n"
        "<DetectionRegionList>\r\n"
        "<DetectionRegionEntry>\r\n"
        "<regionID>1</regionID>\r\n"
        "<sensitivityLevel>50</sensitivityLevel>\r\n"
        "<RegionCoordinatesList>\r\n"
        "<RegionCoordinates><positionX>212</positionX><positionY>604</positionY></RegionCoordinates>\r\n"
        "<RegionCoordinates><positionX>788</positionX><positionY>571</positionY></RegionCoordinates>\r\n"
        "</RegionCoordinatesList>\r\n"
        "<TargetRect><X>0.412</X><Y>0.356</Y><width>0.081</width><height>0.227</height></TargetRect>\r\n"
        "</DetectionRegionEntry>\r\n"
        "</DetectionRegionList>\r\n"
        "</EventNotificationAlert>\r\n"
    ).encode()


def anpr_xml(ip, date_time, plate, post_count=1):
    """Plate recognition metadata part (anpr.xml)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<EventNotificationAlert version="2.0" xmlns="{NS}">\r\n'
        f"<ipAddress>{ip}</ipAddress>\r\n"
        "<portNo>80</portNo>\r\n"
        "<protocol>HTTP</protocol>\r\n"
        f"<macAddress>{ANPR_MAC}</macAddress>\r\n"
        "<channelID>1</channelID>\r\n"
        f"<dateTime>{date_time}</dateTime>\r\n"
        f"<activePostCount>{post_count}</activePostCount>\r\n"
        "<eventType>ANPR</eventType>\r\n"
        "<eventState>active</eventState>\r\n"
        "<eventDescription>ANPR</eventDescription>\r\n"
        "<channelName>Gate IN</channelName>\r\n"
        "<ANPR>\r\n"
        "<country>3</country>\r\n"
        f"<licensePlate>{plate}</licensePlate>\r\n"
        "<line>1</line>\r\n"
        "<direction>forward</direction>\r\n"
        "<confidenceLevel>98</confidenceLevel>\r\n"
        "<plateType>unknown</plateType>\r\n"
        "<plateColor>white</plateColor>\r\n"
        "<vehicleType>vehicle</vehicleType>\r\n"
        "<detectDir>8</detectDir>\r\n"
        "<pictureInfoList>\r\n"
        "<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type></pictureInfo>\r\n"
        "<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type></pictureInfo>\r\n"
        "</pictureInfoList>\r\n"
        "</ANPR>\r\n"
        "</EventNotificationAlert>\r\n"
    ).encode()


def access_json(ip, date_time, serial, card, post_count=1):
    """Access terminal event (JSON), as sent with parameterFormatType JSON."""
    doc = {
        "ipAddress": ip,
        "portNo": 80,
        "protocol": "HTTP",
        "macAddress": ACS_MAC,
        "channelID": 1,
        "dateTime": date_time,
        "activePostCount": post_count,
        "eventType": "AccessControllerEvent",
        "eventState": "active",
        "eventDescription": "Access Controller Event",
        "deviceID": "DS-K1T341AM20230517V030800ENF00000000",
        "uuid": f"a1b2c3d4-0000-4000-8000-{serial:012d}",
        "AccessControllerEvent": {
            "deviceName": "Door 1",
            "majorEventType": 5,
            "subEventType": 1,
            "cardNo": card,
            "cardType": 1,
            "cardReaderNo": 1,
            "doorNo": 1,
            "serialNo": serial,
            "currentVerifyMode": "cardOrFaceOrFp",
            "currentEvent": True,
            "attendanceStatus": "undefined",
            "label": "",
            "mask": "no",
            "picturesNumber": 0,
        },
    }
    return json.dumps(doc, indent=1).encode()


def heartbeat_json(ip, date_time):
    """heartBeat posted by an access terminal with an event subscription."""
    doc = {
        "ipAddress": ip,
        "portNo": 80,
        "protocol": "HTTP",
        "macAddress": ACS_MAC,
        "channelID": 1,
        "dateTime": date_time,
        "activePostCount": 0,
        "eventType": "heartBeat",
        "eventState": "active",
        "eventDescription": "heartBeat",
        "deviceID": "DS-K1T341AM20230517V030800ENF00000000",
        "uuid": "a1b2c3d4-0000-4000-8000-00000000beef",
    }
    return json.dumps(doc, indent=1).encode()


def fake_jpeg(size, seed):
    """`size` bytes: JPEG SOI (FF D8), pseudo-random bytes, EOI (FF D9)."""
    rnd = random.Random(seed)
    return b"\xff\xd8" + rnd.randbytes(size - 4) + b"\xff\xd9"


# The two ANPR events of multipart-anpr.pcap: (date, plate, plate picture size, detection size).
ANPR_EVENTS = [
    ("2024-05-14T10:21:40+08:00", "AB123CD", 10240, 81920, 11),
    ("2024-05-14T10:21:47+08:00", "XY987ZT", 9876, 73421, 22),
]


def multipart(parts, boundary=BOUNDARY):
    """multipart/form-data body. parts: list of (name, content_type, bytes). Each part carries
    its own Content-Length, as plate cameras do. Returns (body, [part sizes])."""
    out = bytearray()
    sizes = []
    for name, ctype, data in parts:
        delim = f"\r\n--{boundary}".encode()
        if delim in data:
            raise ValueError(f"part {name} contains the boundary")
        out += f"--{boundary}\r\n".encode()
        out += f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'.encode()
        out += f"Content-Type: {ctype}\r\n".encode()
        out += f"Content-Length: {len(data)}\r\n\r\n".encode()
        out += data
        out += b"\r\n"
        sizes.append(len(data))
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), sizes


def anpr_multipart(ip, index):
    """(body, part sizes) of ANPR event `index` (0 or 1)."""
    date, plate, plate_size, det_size, seed = ANPR_EVENTS[index]
    return multipart(
        [
            ("anpr.xml", "text/xml", anpr_xml(ip, date, plate, post_count=1)),
            ("licensePlatePicture.jpg", "image/jpeg", fake_jpeg(plate_size, seed)),
            ("detectionPicture.jpg", "image/jpeg", fake_jpeg(det_size, seed + 1)),
        ]
    )
