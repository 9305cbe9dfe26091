from smartoken.relay.sse import SSEDecoder


def test_events_split_across_reads() -> None:
    d = SSEDecoder()
    assert d.feed(b'data: {"a"') == []
    assert d.feed(b': 1}\n') == []
    assert d.feed(b"\ndata: [DONE]\n\n") == [b'{"a": 1}', b"[DONE]"]


def test_crlf_comments_multiline_and_no_space() -> None:
    d = SSEDecoder()
    out = d.feed(b": ping\r\n\r\ndata:x\r\ndata: y\r\n\r\nevent: error\ndata: z\n\n")
    assert out == [b"x\ny", b"z"]
    assert d.event == b"error"


def test_close_flushes_an_unterminated_event() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: last") == []
    assert d.close() == [b"last"]
    assert d.close() == []
