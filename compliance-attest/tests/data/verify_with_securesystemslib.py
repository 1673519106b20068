"""Verifies a compliance-rs DSSE envelope with an implementation that is not
ours: securesystemslib (the in-toto project's signing library) for the
envelope and the Ed25519 signature, Python's hashlib for the digests.

    verify_with_securesystemslib.py ENVELOPE PUBLIC_KEY_PEM

Checks the signature, then every subject's SHA-256 against the file of that
name relative to the envelope's folder. Prints one line and exits 0 when all
verify; exits 1 naming the first problem.
"""

import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def main(envelope_path: str, key_path: str) -> int:
    public = load_pem_public_key(pathlib.Path(key_path).read_bytes())
    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    # The key id compliance-rs writes: SHA-256 of the SubjectPublicKeyInfo DER.
    key = SSlibKey.from_crypto(public, keyid=hashlib.sha256(spki).hexdigest())
    envelope = Envelope.from_dict(json.loads(pathlib.Path(envelope_path).read_text()))
    try:
        envelope.verify([key], 1)
    except VerificationError as error:
        print(f"signature: {error}")
        return 1
    statement = json.loads(envelope.payload)
    if statement.get("_type") != "https://in-toto.io/Statement/v1":
        print(f"not an in-toto Statement v1: {statement.get('_type')}")
        return 1
    base = pathlib.Path(envelope_path).parent
    for subject in statement["subject"]:
        path = base / subject["name"]
        if not path.is_file():
            print(f"{subject['name']}: missing")
            return 1
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != subject["digest"]["sha256"]:
            print(f"{subject['name']}: sha256 {digest}, signed {subject['digest']['sha256']}")
            return 1
    print(f"verified: {len(statement['subject'])} subjects, predicate {statement['predicateType']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
