import pytest

from reelhook.links import links_deadline, url_expiry
from reelhook.ssrf import UnsafeUrl, check_url, host_allowed


def fixed(*addresses):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("address", [
    "169.254.169.254", "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "100.64.0.1", "0.0.0.0",
    "::1", "fe80::1", "fd00::1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "224.0.0.1",
])
def test_non_public_addresses_are_refused(address):
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_url("https://cdn.example.com/v.mp4", resolver=fixed("93.184.216.34", address))


@pytest.mark.parametrize("host", ["2852039166", "0xA9FEA9FE", "0251.0376.0251.0376", "169.254.169.254", "[::ffff:a9fe:a9fe]"])
def test_numeric_encodings_of_the_metadata_address_are_refused_with_the_real_resolver(host):
    # getaddrinfo normalises decimal, hex and octal forms, so the check sees 169.254.169.254.
    with pytest.raises(UnsafeUrl):
        check_url(f"https://{host}/latest/meta-data/")


@pytest.mark.parametrize(("url", "why"), [
    ("http://cdn.example.com/v.mp4", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://cdn.example.com/", "scheme"),
    ("https://user:pw@cdn.example.com/v.mp4", "credentials"),
    ("https:///nohost", "no host"),
    ("https://cdn.example.com:99999/v.mp4", "not a valid URL"),
])
def test_bad_urls(url, why):
    with pytest.raises(UnsafeUrl, match=why):
        check_url(url, resolver=fixed("93.184.216.34"))


def test_public_address_is_pinned():
    target = check_url("https://cdn.example.com:8443/a/v.mp4?x=1", resolver=fixed("93.184.216.34"))
    assert target.host == "cdn.example.com"
    assert target.pinned_url() == "https://93.184.216.34:8443/a/v.mp4?x=1"
    six = check_url("https://cdn.example.com/v.mp4", resolver=fixed("2606:2800:220:1:248:1893:25c8:1946"))
    assert six.pinned_url() == "https://[2606:2800:220:1:248:1893:25c8:1946]/v.mp4"


def test_allowlist():
    assert host_allowed("cdn.freepik.com", [".freepik.com"])
    assert host_allowed("a.b.freepik.com", ["*.freepik.com"])
    assert not host_allowed("freepik.com.evil.io", [".freepik.com"])
    assert not host_allowed("evilfreepik.com", [".freepik.com"])
    assert host_allowed("storage.googleapis.com", ["storage.googleapis.com"])
    with pytest.raises(UnsafeUrl, match="allowlist"):
        check_url("https://evil.example/v.mp4", allowed_hosts=[".freepik.com"], resolver=fixed("93.184.216.34"))


def test_insecure_mode_admits_http_and_loopback_only():
    assert check_url("http://127.0.0.1:8080/v.mp4", allow_insecure=True, resolver=fixed("127.0.0.1"))
    with pytest.raises(UnsafeUrl):
        check_url("http://10.0.0.1/v.mp4", allow_insecure=True, resolver=fixed("10.0.0.1"))


@pytest.mark.parametrize(("url", "expiry"), [
    ("https://b.s3.amazonaws.com/v.mp4?X-Amz-Date=20261122T000000Z&X-Amz-Expires=3600&X-Amz-Signature=x", 1795305600 + 3600),
    ("https://storage.googleapis.com/b/v.mp4?X-Goog-Date=20261122T000000Z&X-Goog-Expires=600", 1795305600 + 600),
    ("https://d111.cloudfront.net/v.mp4?Expires=1795306000&Signature=s", 1795306000),
    ("https://sandbox/files/t.mp4?expires=1795306001", 1795306001),
    ("https://x.blob.core.windows.net/c/v.mp4?se=2026-11-22T01:00:00Z&sig=s", 1795305600 + 3600),
    ("https://cdn.example.com/v.mp4", None),
    ("https://cdn.example.com/v.mp4?X-Amz-Date=garbage&X-Amz-Expires=60", None),
])
def test_url_expiry(url, expiry):
    assert url_expiry(url) == expiry


def test_earliest_deadline_wins():
    now = 1795305600
    urls = ["https://cdn.example.com/a.mp4", "https://d.cloudfront.net/b.mp4?Expires=1795305900"]
    assert links_deadline(urls, 24 * 3600, now) == 1795305900
    assert links_deadline(urls[:1], 3600, now) == now + 3600


@pytest.mark.parametrize("url", [
    "https://b.s3.amazonaws.com/v.mp4?X-Amz-Date=20261122T000000Z&X-Amz-Expires=3%C2%B2",  # a superscript two
    "https://sandbox/files/t.mp4?expires=%C2%B9%C2%B2",
    "https://sandbox/files/t.mp4?expires=%D9%A1%D9%A2",  # Arabic-Indic digits: isdecimal, not ASCII
    "https://sandbox/files/t.mp4?expires=" + "9" * 5000,
])
def test_expiries_in_anything_but_ascii_digits_say_nothing(url):
    assert url_expiry(url) is None


# -- the address policy: explicit ranges, the same on every Python release ---------------------

TRANSITION_FORMS = ["64:ff9b::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe", "2002:a9fe:a9fe::1", "::a9fe:a9fe",
                    "::127.0.0.1", "::ffff:0:a9fe:a9fe", "2001:0:4136:e378:8000:63bf:3fff:fdd2"]


@pytest.mark.parametrize("address", [*TRANSITION_FORMS, "::", "100::1", "2001:db8::1", "fec0::1", "ff02::1"])
def test_ipv6_forms_that_embed_or_translate_ipv4_are_refused(address):
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_url("https://cdn.example.com/v.mp4", resolver=fixed(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8",
                                     "2a00:1450:4001:80b::200e"])
def test_public_addresses_pass(address):
    assert check_url("https://cdn.example.com/v.mp4", resolver=fixed(address)).address == address


@pytest.mark.parametrize(("host", "category"), [
    ("169.254.169.254", "link-local"), ("10.0.0.1", "private"), ("[::ffff:169.254.169.254]", "link-local"),
    ("2852039166", "link-local"), ("0xA9FEA9FE", "link-local"), ("0251.0376.0251.0376", "link-local"),
    ("169.254.43518", "link-local"), ("[64:ff9b::a9fe:a9fe]", "NAT64"), ("[2002:a9fe:a9fe::1]", "6to4"),
    ("[::1]", "loopback"), ("127.1", "loopback"), ("[fd00::1]", "non-global IPv6"),
])
def test_literal_hosts_are_refused_by_category_without_dns(host, category):
    from reelhook.ssrf import literal_refusal

    assert f"names a {category} address" in literal_refusal(host.strip("[]"))


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "cafe.de", "8.8.8.8", "2606:4700::1111"])
def test_names_and_public_literals_are_not_refused_without_dns(host):
    from reelhook.ssrf import literal_refusal

    assert literal_refusal(host) is None
