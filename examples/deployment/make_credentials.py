"""Create what a secure Flower deployment needs, into one folder.

    python examples/deployment/make_credentials.py FOLDER [--nodes N] [--host NAME]

- `ca.crt`, `ca.key`: a private certificate authority (keep `ca.key` away
  from the machines: it only signs);
- `server.pem`, `server.key`: the SuperLink's TLS certificate for the host
  names and addresses given, signed by the CA;
- `node-<i>.key`, `node-<i>.pub`: each SuperNode's authentication key pair
  (elliptic curve P-384, OpenSSH format, as `flower-supernode` and
  `flwr supernode register` read them);
- `connection.toml`: the `flwr` CLI's entry for this SuperLink, to append to
  `$FLWR_HOME/config.toml`.

Private keys are written readable by their owner only. Run it again with a
new folder to rotate everything; nothing here is ever committed.
"""

import argparse
import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    hosts: list[str] | None = None,
) -> x509.Certificate:
    """Sign a CA certificate (no issuer) or a server certificate for `hosts`."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def make(folder: Path, nodes: int, hosts: list[str], port: int) -> None:
    """Write the CA, the SuperLink's certificate and `nodes` key pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = _certificate("flower-meta CA", ca_key)
    _write(folder / "ca.key", _pem_key(ca_key), private=True)
    _write(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP384R1())
    server = _certificate(hosts[0], server_key, ca.subject, ca_key, hosts)
    _write(folder / "server.key", _pem_key(server_key), private=True)
    _write(folder / "server.pem", server.public_bytes(serialization.Encoding.PEM))
    for index in range(1, nodes + 1):
        key = ec.generate_private_key(ec.SECP384R1())
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        _write(folder / f"node-{index}.key", private, private=True)
        _write(folder / f"node-{index}.pub", public + b"\n")
    (folder / "connection.toml").write_text(
        "[superlink.secure]\n"
        f'address = "{hosts[0]}:{port}"\n'
        f'root-certificates = "{(folder / "ca.crt").resolve()}"\n'
    )


def main() -> None:
    """Parse the command line and write the credentials."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write (created)")
    parser.add_argument("--nodes", type=int, default=2, help="SuperNode key pairs")
    parser.add_argument(
        "--host",
        action="append",
        help="the SuperLink's host name or IP (repeat; default 127.0.0.1, localhost)",
    )
    parser.add_argument("--port", type=int, default=9093, help="the SuperLink's port")
    args = parser.parse_args()
    make(
        args.folder.expanduser(),
        args.nodes,
        args.host or ["127.0.0.1", "localhost"],
        args.port,
    )
    print(f"credentials for a SuperLink and {args.nodes} SuperNodes in {args.folder}")


if __name__ == "__main__":
    main()
