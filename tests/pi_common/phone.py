"""A simulated privacyIDEA Authenticator (poll-only push token) for the tests.

phone.py enroll PI SERIAL ENROLLMENT_CREDENTIAL KEYFILE   -> completes enrollment step 2
phone.py answer PI SERIAL KEYFILE approve|decline WAIT_S DELAY_S -> after DELAY_S, polls for an open
    challenges (at most WAIT_S) and answers them, signed as the privacyIDEA Authenticator app does
"""
import base64, datetime, json, sys, time, urllib.parse, urllib.request
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def call(method, url, data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def sign(key, text):
    sig = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b32encode(sig).decode()


def main():
    cmd, pi, serial, keyfile = sys.argv[1:5]
    if cmd == "enroll":
        cred = sys.argv[5]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        open(keyfile, "wb").write(key.private_bytes(serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        der = key.public_key().public_bytes(serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        r = call("POST", pi + "/ttype/push", {"serial": serial, "enrollment_credential": cred,
            "fbtoken": "poll-only", "pubkey": base64.b64encode(der).decode()})
        print(json.dumps(r["result"]))
        return 0 if r["result"].get("status") and r["result"].get("value") else 1
    key = serialization.load_pem_private_key(open(keyfile, "rb").read(), password=None)
    decision, wait, delay = sys.argv[5], float(sys.argv[6]), float(sys.argv[7])
    time.sleep(delay)
    until = time.time() + wait
    while time.time() < until:
        ts = datetime.datetime.now(datetime.timezone.utc).isoformat()
        q = urllib.parse.urlencode({"serial": serial, "timestamp": ts,
                                    "signature": sign(key, f"{serial}|{ts}")})
        r = call("GET", pi + "/ttype/push?" + q)
        open_challenges = r["result"].get("value") or []
        if open_challenges:
            # Every open one: an earlier push left unanswered stays open at privacyIDEA
            # until it expires, and the newest is among them.
            ok = True
            for c in open_challenges:
                nonce = c["nonce"]
                data = {"serial": serial, "nonce": nonce}
                text = f"{nonce}|{serial}"
                if decision == "decline":
                    data["decline"] = "1"
                    text += "|decline"
                data["signature"] = sign(key, text)
                r = call("POST", pi + "/ttype/push", data)
                print(json.dumps(r["result"]))
                ok = ok and bool(r["result"].get("status"))
            return 0 if ok else 1
        time.sleep(0.2)
    print("no challenge")
    return 2


sys.exit(main())
