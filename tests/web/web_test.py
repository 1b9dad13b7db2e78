#!/usr/bin/python3
"""The web pages in a real browser: headless Chromium (Debian's chromium and chromium-driver,
driven by python3-selenium) against a real bookingd on a free loopback port.

A buyer searches, holds, sees the countdown, cancels, lets a hold expire, pays (demo), is told
in words that a tier sold out while the page was open and that a per-buyer limit is reached,
and watches a sale open on a page opened before it (then holds by keyboard alone); the page's
words for every API error are checked. An operator signs in with a token, sees an event's stock
bar move on the events list without losing the keyboard focus, creates an event (the API's
per-field details shown on the form), sees its bar move when a hold is made through the API,
confirms that booking, filters and pages the bookings, closes the sale (the storefront shows it
closed), is refused a capacity below what is booked, changes a capacity, and cancels an event.
Every JavaScript error and every console error fails the test, and so does every failed request
but the ones a step expects (a 409 for a sold-out tier); the console goes to --out/console.log.
Screenshots of each page at desktop and phone width go to --out.

usage: web_test.py --bookingd PATH --booking PATH --out DIR
"""
import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import (ElementClickInterceptedException,
                                        ElementNotInteractableException,
                                        StaleElementReferenceException, TimeoutException)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

HOLD_TTL = 20  # seconds: long enough to act on a hold in a slow (sanitizer) build, short enough
               # to watch one expire
CHECKOUT = "https://pay.example.com/checkout?booking={bookId}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class Browser:
    def __init__(self, out):
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--lang=en-US", "--no-first-run",
                  "--disable-background-networking", "--disable-extensions"):
            options.add_argument(a)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.d.set_page_load_timeout(30)
        self.out = out
        self.errors = []
        self.console = open(os.path.join(out, "console.log"), "w")

    def collect(self, expected=()):
        """Fails on JavaScript errors, console errors and failed requests since the last call,
        except requests that failed with a status in `expected` (the step provoked them: a 409
        for a sold-out tier). Everything the console said goes to console.log."""
        for entry in self.d.get_log("browser"):
            self.console.write("%s %s %s\n" % (entry["level"], entry.get("source"), entry["message"]))
            if entry["level"] != "SEVERE":
                continue
            status = re.search(r"status of (\d{3})", entry["message"])
            if entry.get("source") == "network" and status and int(status.group(1)) in expected:
                continue
            self.errors.append(entry["message"])
        self.console.flush()
        assert not self.errors, "errors in the page's console: %s" % self.errors

    def wait(self, condition, what, timeout=10):
        """`what` names the awaited state: a string, or a function giving one (called only on
        failure)."""
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1, ignored_exceptions=(
                StaleElementReferenceException, ElementClickInterceptedException,
                ElementNotInteractableException)).until(
                lambda d: condition())
        except TimeoutException:
            self.shot("failure")
            raise AssertionError("timed out waiting for %s on %s" %
                                 (what() if callable(what) else what, self.d.current_url))

    def click(self, css):
        """Clicks the element once it is there; again if the page replaced it meanwhile."""
        def attempt():
            self.find(css).click()
            return True
        self.wait(attempt, "%s to be clickable" % css)

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        """The first match's text, "" if none: live pages replace their nodes as changes come in,
        so a node found a moment ago may be gone (read again)."""
        for _ in range(5):
            found = self.finds(css)
            if not found:
                return ""
            try:
                return found[0].text
            except StaleElementReferenceException:
                continue
        return ""

    def wait_text(self, css, pattern, timeout=10):
        return self.wait(lambda: re.search(pattern, self.text(css)),
                         lambda: "%s to read /%s/ (it reads %r)" % (css, pattern, self.text(css)),
                         timeout)

    def shot(self, name):
        """The whole page, not only what the window shows."""
        size = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        width = self.d.execute_script("return window.innerWidth")
        png = self.d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 3000),
                     "scale": 1}})["data"]
        with open(os.path.join(self.out, name + ".png"), "wb") as f:
            f.write(base64.b64decode(png))

    def unnamed_controls(self):
        """Visible links, buttons and fields a screen reader would have no name for."""
        return self.d.execute_script("""
            return [...document.querySelectorAll('a[href], button, input, select, textarea')]
              .filter((e) => e.getClientRects().length > 0 && e.type !== 'hidden')
              .filter((e) => {
                const label = e.labels ? [...e.labels].map((l) => l.textContent).join('') : '';
                const name = label || e.getAttribute('aria-label') || e.getAttribute('title') ||
                  (e.matches('a, button') ? e.textContent : '');
                return !name.trim();
              })
              .map((e) => e.outerHTML.slice(0, 160));""")

    def both_widths(self, name):
        """Screenshots at desktop width and at a phone's 375 px; every control shown has a name."""
        unnamed = self.unnamed_controls()
        assert not unnamed, "%s: controls without a label or name: %s" % (name, unnamed)
        self.shot(name + "-desktop")
        self.d.set_window_size(375, 812)
        time.sleep(0.3)
        width = self.d.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, "%s scrolls sideways at 375 px (%d px wide)" % (name, width)
        self.shot(name + "-phone")
        self.d.set_window_size(1280, 900)
        time.sleep(0.2)


def quantity(b, tier, n):
    """Types n into the tier's quantity field, once the event page has drawn it: a page opened by
    changing the URL's fragment renders after its event has been read."""
    def attempt():
        field = b.find("#qty-" + tier)
        field.clear()
        field.send_keys(str(n))
        return field.get_attribute("value") == str(n)
    b.wait(attempt, "the quantity field of %s to take %d" % (tier, n))


def storefront(b, base, api):
    d = b.d
    d.get(base + "/")
    b.wait(lambda: "Blink 182" in b.text("#results"), "the demo event in the results")
    b.find("#q").send_keys("zzz-nothing")
    b.wait_text("#count", "No events match")
    q = b.find("#q")
    q.clear()
    q.send_keys("blink")
    b.wait(lambda: len(b.finds("#results li")) == 1, "one result for 'blink'")
    b.both_widths("storefront-search")
    # By keyboard: Tab from the search field reaches the result, Enter opens it.
    # (A late search answer may redraw the list under the focus: then Tab again.)
    def open_by_keyboard():
        b.find("#q").send_keys(Keys.TAB)
        link = d.switch_to.active_element
        if not link.text.startswith("Blink 182"):
            return False
        link.send_keys(Keys.ENTER)
        return True
    b.wait(open_by_keyboard, "Tab to the result and Enter to open it")
    b.wait(lambda: b.finds("#qty-gold-Con10124"), "the event page's tiers")
    b.wait_text("td[data-tier='gold-Con10124']", r"100 left")
    b.both_widths("storefront-event")
    b.collect()

    # Hold, see the countdown, cancel.
    quantity(b, "gold-Con10124", 2)
    b.click("#hold")
    b.wait_text("#countdown", r"Held for 0:\d\d")
    book_id = d.current_url.rsplit("/", 1)[1]
    status, body = api.call("GET", "/v1/api/books/" + book_id)
    assert status == 200 and body["data"]["status"] == "HELD", body
    assert b.find("#pay").text == "Pay now (demo)"
    b.both_widths("storefront-booking")
    b.click("#cancel")
    b.wait_text("#booking-status", "cancelled")
    assert api.call("GET", "/v1/api/books/" + book_id)[1]["data"]["status"] == "CANCELLED"
    b.collect()

    # A hold left alone turns into "expired" on time, and the server agrees.
    d.get(base + "/#/e/Con10124")
    b.wait(lambda: b.finds("#qty-sil-Con10124"), "the event page")
    quantity(b, "sil-Con10124", 1)
    held_at = time.monotonic()  # the hold cannot exist before the click
    b.click("#hold")
    b.wait_text("#countdown", r"Held for")
    expiring = d.current_url.rsplit("/", 1)[1]
    expires_at = api.call("GET", "/v1/api/books/" + expiring)[1]["data"]["expiresAt"]
    b.wait_text("#countdown", "^Expired$", timeout=HOLD_TTL + 3)
    assert time.monotonic() - held_at >= HOLD_TTL - 1.5, "expired early (%s)" % expires_at
    b.wait(lambda: b.find("#booking-status").get_attribute("data-status") == "EXPIRED",
           "the expired status")
    b.wait(lambda: api.call("GET", "/v1/api/books/" + expiring)[1]["data"]["status"] == "EXPIRED",
           "the server to expire the hold", timeout=5)
    assert not b.finds("#cancel") and not b.finds("#pay")
    b.both_widths("storefront-expired")
    b.collect()

    # Pay with the demo payment.
    d.get(base + "/#/e/Con10124")
    b.wait(lambda: b.finds("#qty-pla-Con10124"), "the event page")
    quantity(b, "pla-Con10124", 3)
    b.click("#hold")
    b.wait(lambda: b.finds("#pay"), "the pay button")
    b.click("#pay")
    b.wait_text("#booking-status", "confirmed")
    paid = d.current_url.rsplit("/", 1)[1]
    assert api.call("GET", "/v1/api/books/" + paid)[1]["data"]["status"] == "CONFIRMED"
    b.both_widths("storefront-paid")

    # A tier that sells out while the page is open: the buyer is told in words, and the live
    # availability shows it sold out.
    tiny = {"key": "Tiny", "name": "Tiny Room Session", "type": "Concert",
            "date": "2030-01-01T20:00:00.000+00:00", "utcOffset": "+00:00",
            "location": {"venue": "The Back Room", "address": "1 Side Street"},
            "eventGroups": [{"key": "only-Tiny", "category": "Standing", "price": 10,
                             "currency": "EUR", "qty": 1, "startDate": "2020-01-01T00:00:00Z",
                             "endDate": "2030-01-01T00:00:00Z", "maxPerOrder": 4}]}
    status, body = api.call("POST", "/v1/api/events", tiny)
    assert status == 201, body
    d.get(base + "/#/e/Tiny")
    b.wait_text("td[data-tier='only-Tiny']", "Only 1 left")
    quantity(b, "only-Tiny", 1)
    # Right after a poll, so that the next one (2 s later) comes after the click. The count
    # lives on <main>, which earlier pages polled too: wait for one more.
    polls = lambda: int(b.find("main").get_attribute("data-polls") or 0)
    seen = polls()
    b.wait(lambda: polls() > seen, "the page's next availability poll")
    status, body = api.call("POST", "/v1/api/books",
                            {"key": "Tiny", "groupKeys": [{"key": "only-Tiny", "qty": 1}]})
    assert status == 201, body
    b.click("#hold")
    b.wait_text("#hold-error", "Not enough tickets left: Standing is sold out")
    b.wait_text("td[data-tier='only-Tiny']", "Sold out", timeout=5)
    assert not b.find("#hold").is_enabled(), "a sold-out event's hold button is enabled"
    b.both_widths("storefront-soldout")
    b.collect(expected={409})

    # A tier with a per-buyer limit: the address is the buyer (no token here); past the limit
    # the buyer is told so in words.
    limited = {"key": "Lim", "name": "Limited Lounge", "type": "Concert",
               "date": "2030-01-01T20:00:00.000+00:00", "utcOffset": "+00:00",
               "location": {"venue": "The Lounge", "address": "2 Side Street"},
               "eventGroups": [{"key": "vip-Lim", "category": "VIP", "price": 80,
                                "currency": "EUR", "qty": 50, "startDate": "2020-01-01T00:00:00Z",
                                "endDate": "2030-01-01T00:00:00Z", "maxPerOrder": 4,
                                "maxPerUser": 2}]}
    status, body = api.call("POST", "/v1/api/events", limited)
    assert status == 201, body
    d.get(base + "/#/e/Lim")
    b.wait_text("#buy tbody th", "At most 2 per buyer")
    quantity(b, "vip-Lim", 2)
    b.click("#hold")
    b.wait_text("#countdown", r"Held for")
    d.get(base + "/#/e/Lim")
    quantity(b, "vip-Lim", 1)
    b.click("#hold")
    b.wait_text("#hold-error", "Limit reached: at most 2 VIP tickets per buyer, and you already have 2")
    b.both_widths("storefront-limit")
    b.collect(expected={409})

    # A page opened before the sale opens shows when it opens, and opens its tiers when the
    # time comes (by the server's clock); then a hold by keyboard alone.
    opens = time.time() + 8  # time enough to create the event and draw the page, even slowly
    soon = {"key": "Soon", "name": "Midnight Release", "type": "Concert",
            "date": "2030-01-01T20:00:00.000+00:00", "utcOffset": "+00:00",
            "location": {"venue": "The Depot", "address": "3 Side Street"},
            "eventGroups": [{"key": "ga-Soon", "category": "General", "price": 20,
                             "currency": "EUR", "qty": 100,
                             "startDate": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(opens)) + "Z",
                             "endDate": "2030-01-01T00:00:00Z"}]}
    status, body = api.call("POST", "/v1/api/events", soon)
    assert status == 201, body
    d.get(base + "/#/e/Soon")
    b.wait_text(".window[data-tier='ga-Soon']", "^Opens ")
    assert not b.find("#qty-ga-Soon").is_enabled() and not b.find("#hold").is_enabled()
    b.both_widths("storefront-opens")
    b.wait(lambda: b.find("#qty-ga-Soon").is_enabled(), "the sale to open on the page",
           timeout=20)
    assert time.time() >= opens - 1, "the page opened the sale early"
    b.wait_text(".window[data-tier='ga-Soon']", "^On sale until ")
    d.execute_script("document.getElementById('main').focus()")  # where a page change leaves it
    for _ in range(6):
        d.switch_to.active_element.send_keys(Keys.TAB)
        if d.switch_to.active_element.get_attribute("id") == "qty-ga-Soon":
            break
    field = d.switch_to.active_element
    assert field.get_attribute("id") == "qty-ga-Soon", "Tab did not reach the quantity field"
    field.send_keys(Keys.ARROW_UP, Keys.ENTER)  # 0 -> 1; Enter submits the form
    b.wait_text("#countdown", r"Held for")
    b.collect()

    # The page's words for each refusal the API can give a buyer.
    words = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/assets/api.js').then((m) => {
          const e = (code, details) => m.buyerMessage({code, message: code, details: details || {}},
                                                      {g: 'Gold'});
          done({
            sold: e('insufficient_stock', {available: {g: 0}}),
            few: e('insufficient_stock', {available: {g: 2}}),
            window: e('sale_not_open'), closed: e('sale_closed'), wave: e('wave_limit_reached'),
            order: e('per_user_limit', {key: 'g', maxPerOrder: 4}),
            buyer: e('per_user_limit', {key: 'g', maxPerUser: 2, alreadyBooked: 1}),
            busy: e('lock_timeout'), down: e('unavailable'), rate: e('rate_limited'),
            net: e('network'), gone: e('hold_expired'), other: e('internal'),
          });
        }, (err) => done({error: String(err)}));""")
    expect = {"sold": "Gold is sold out", "few": "only 2 left of Gold",
              "window": "not on sale right now", "closed": "Sales for this event are closed",
              "wave": "This release is sold out", "order": "at most 4 Gold tickets in one order",
              "buyer": "at most 2 Gold tickets per buyer, and you already have 1",
              "busy": "try again", "down": "try again", "rate": "try again",
              "net": "try again", "gone": "hold has expired", "other": "try again"}
    for k, text in expect.items():
        assert text in words.get(k, ""), "%s: %r does not say %r (%s)" % (k, words.get(k), text, words)


def operator(b, base, api, booking_cli, db):
    d = b.d
    made = subprocess.run([booking_cli, "--db", db, "token", "create", "ops", "--role", "admin"],
                          capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    token = re.search(r"bk_[0-9a-f]+", made.stdout).group(0)
    # Open mode ends within a second of the first token.
    deadline = time.monotonic() + 5
    while api.call("GET", "/v1/api/changes?limit=1")[0] != 401:
        assert time.monotonic() < deadline, "open mode did not end"
        time.sleep(0.1)

    d.get(base + "/admin")
    b.wait(lambda: b.finds("#token"), "the sign-in form")
    b.find("#token").send_keys("bk_" + "0" * 64)
    b.click("#signin button[type=submit]")
    b.wait_text("#signin-error", "unknown or was revoked")
    b.both_widths("admin-signin")
    b.find("#token").clear()
    b.find("#token").send_keys(token)
    b.click("#signin button[type=submit]")
    b.wait(lambda: b.finds("#events [data-event='Con10124']"), "the events list")
    assert token not in d.current_url
    assert d.execute_script("return sessionStorage.getItem('booking.token')") == token
    assert d.execute_script("return localStorage.length") == 0
    b.wait_text("#live", "Live")
    b.both_widths("admin-events")
    b.collect(expected={401})  # the wrong token's sign-in

    # The events list moves a tier's bar as holds come in, and the focus stays where it was.
    counts = ".card[data-event='Con10124'] .tier-stock[data-tier='gold-Con10124'] .counts"
    before = b.text(counts)
    link = b.find(".card[data-event='Con10124'] h2 a")
    d.execute_script("arguments[0].focus()", link)
    status, body = api.call("POST", "/v1/api/books",
                            {"key": "Con10124", "groupKeys": [{"key": "gold-Con10124", "qty": 2}]})
    assert status == 201, body
    b.wait(lambda: b.text(counts) != before, "the events list's bar to move (%s)" % before,
           timeout=5)
    assert d.switch_to.active_element == link, "the live update took the keyboard focus away"
    b.collect()

    # Create an event: the form checks what it can, and shows the API's details on the fields.
    d.find_element(By.LINK_TEXT, "New event").click()
    b.wait(lambda: b.finds("#f-key"), "the new event form")

    def fill(field, value):
        el = b.find("#f-" + field)
        el.clear()
        if el.get_attribute("type") == "datetime-local":
            # Chromium's date-time field takes its parts as typed digits.
            d.execute_script("arguments[0].value = arguments[1]", el, value)
        else:
            el.send_keys(value)

    fill("key", "Jazz2027")
    fill("name", "Jazz by the River")
    fill("date", "2027-06-12T19:30")
    fill("utcOffset", "+02:00")
    fill("location-venue", "Riverside Stage")
    fill("location-address", "Quai 4, Lyon")
    fill("eventGroups-0--key", "floor-Jazz2027")
    fill("eventGroups-0--category", "Floor")
    fill("eventGroups-0--price", "45.50")
    fill("eventGroups-0--currency", "EUR")
    fill("eventGroups-0--capacity", "200000000")
    fill("eventGroups-0--startDate", "2026-01-01T09:00")
    fill("eventGroups-0--endDate", "2025-01-01T09:00")
    b.click("#save")
    # Checked in the page: the end of the sale window before its start.
    b.wait_text("#f-eventGroups-0--endDate-error", "must be after startDate")
    assert b.find("#f-eventGroups-0--endDate").get_attribute("aria-invalid") == "true"
    fill("eventGroups-0--endDate", "2027-06-12T19:00")
    b.click("#save")
    # Checked by the API only (a capacity above its maximum): its detail lands on the field.
    b.wait_text("#f-eventGroups-0--capacity-error", "at most 100000000")
    b.wait_text("#form-errors", "Please correct 1 field")
    b.both_widths("admin-form-errors")
    fill("eventGroups-0--capacity", "100")
    b.click("#save")
    b.wait(lambda: "/e/Jazz2027" in d.current_url and b.finds("#stock-title"), "the new event")
    b.wait_text(".tier-stock[data-tier='floor-Jazz2027'] .counts", r"0 sold, 0 held, 100 left of 100")
    b.collect(expected={422})  # the capacity the API refused

    # A hold made through the API moves the bar, live.
    status, body = api.call("POST", "/v1/api/books",
                            {"key": "Jazz2027", "groupKeys": [{"key": "floor-Jazz2027", "qty": 3}]})
    assert status == 201, body
    book_id = body["data"]["bookId"]
    b.wait_text(".tier-stock[data-tier='floor-Jazz2027'] .counts",
                r"0 sold, 3 held, 97 left of 100", timeout=5)
    # The bookings table (refreshed by its filter), then confirm the hold as paid.
    Select(b.find("#filter-status")).select_by_value("HELD")
    b.click("#filter")
    b.wait(lambda: b.finds("tr[data-booking='%s']" % book_id), "the hold in the bookings table")
    b.click("tr[data-booking='%s'] button" % book_id)
    b.wait(lambda: b.find("#confirm").is_displayed(), "the confirmation dialog")
    b.find("#pay-reference").send_keys("till-42")
    b.click("#confirm-ok")
    b.wait(lambda: api.call("GET", "/v1/api/books/" + book_id, token=token)[1]["data"]["status"]
           == "CONFIRMED", "the booking to be confirmed")
    b.wait_text(".tier-stock[data-tier='floor-Jazz2027'] .counts", r"3 sold, 0 held, 97 left")
    b.wait_text("#report .revenue", r"136[.,]50")
    Select(b.find("#filter-status")).select_by_value("")
    b.click("#filter")
    b.wait_text("tr[data-booking='%s']" % book_id, "CONFIRMED")
    b.both_widths("admin-event")
    b.collect()

    # Pages of 20 bookings, and cancelling one from the table.
    for _ in range(21):
        status, body = api.call("POST", "/v1/api/books", {
            "key": "Jazz2027", "userId": "bulk",
            "groupKeys": [{"key": "floor-Jazz2027", "qty": 1}]}, token=token)
        assert status == 201, body
    b.click("#filter")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 20 and b.finds("#next-page"),
           "a first page of 20 bookings")
    b.click("#next-page")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 2, "the second page's 2 bookings")
    assert not b.finds("#next-page")
    b.wait_text("tr[data-booking='%s']" % book_id, "CONFIRMED")  # the oldest, on the last page
    b.click("#prev-page")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 20 and b.finds("#next-page"),
           "the first page again")
    # Filtered by user: the 21 bulk bookings, not the first hold.
    b.find("#filter-user").send_keys("bulk")
    b.click("#filter")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 20 and b.finds("#next-page") and
           not b.finds("tr[data-booking='%s']" % book_id), "a page of bulk's bookings")
    b.click("#next-page")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 1, "bulk's 21st booking")
    assert "bulk" in b.text("#bookings tbody tr")
    b.find("#filter-user").clear()
    b.click("#filter")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 20, "every booking again")
    b.click("#next-page")
    b.wait(lambda: len(b.finds("#bookings tbody tr")) == 2, "the second page's 2 bookings")
    b.click("#bookings tbody tr:not([data-booking='%s']) button.secondary" % book_id)
    b.wait(lambda: b.find("#confirm").is_displayed(), "the confirmation dialog")
    b.click("#confirm-ok")
    b.wait_text("#bookings tbody", "CANCELLED")
    b.wait_text(".tier-stock[data-tier='floor-Jazz2027'] .counts", r"3 sold, 20 held, 77 left of 100")
    b.collect()

    # Close the sale, after a confirmation; the storefront shows it closed.
    b.click("#close")
    b.wait(lambda: b.find("#confirm").is_displayed(), "the confirmation dialog")
    b.shot("admin-confirm-close-desktop")
    b.click("#confirm-ok")
    b.wait_text("h1 .badge", "Closed")
    assert api.call("GET", "/v1/api/events/Jazz2027")[1]["data"]["status"] == "closed"
    b.collect()

    # Edit: a capacity below what is booked is refused by the API, on its field; a larger one
    # is saved with If-Match.
    b.click("#edit")
    b.wait(lambda: b.finds("#f-eventGroups-0--capacity"), "the edit form")
    assert b.find("#f-key").get_attribute("readonly") is not None
    fill("eventGroups-0--capacity", "10")
    b.click("#save")
    b.wait_text("#f-eventGroups-0--capacity-error", r"must be at least 23 \(20 held, 3 sold\)")
    b.collect(expected={422})
    fill("eventGroups-0--capacity", "150")
    b.click("#save")
    b.wait_text(".tier-stock[data-tier='floor-Jazz2027'] .counts", r"3 sold, 20 held, 127 left of 150")
    event = api.call("GET", "/v1/api/events/Jazz2027")[1]["data"]
    assert event["version"] == 3 and event["eventGroups"][0]["capacity"] == 150, event
    assert event["eventGroups"][0]["price"] in (45.5, "45.50"), event
    b.collect()

    # The storefront, in another tab: closed.
    d.switch_to.new_window("tab")
    d.get(base + "/#/e/Jazz2027")
    b.wait_text("#event-status", "Sales for this event are closed")
    assert not b.find("#hold").is_enabled()
    b.both_widths("storefront-closed")
    b.collect()
    # A buyer (not an operator now that a token exists) pays at the checkout URL.
    d.get(base + "/#/e/Con10124")
    quantity(b, "gold-Con10124", 1)
    b.click("#hold")
    b.wait(lambda: b.finds("#pay"), "the pay link")
    bought = d.current_url.rsplit("/", 1)[1]
    assert b.find("#pay").get_attribute("href") == CHECKOUT.replace("{bookId}", bought)
    assert b.find("#pay").text == "Pay now"
    b.collect()
    d.close()
    d.switch_to.window(d.window_handles[0])

    # Reopen the sale.
    b.click("#reopen")
    b.wait(lambda: b.find("#confirm").is_displayed(), "the confirmation dialog")
    b.click("#confirm-ok")
    b.wait_text("h1 .badge", "On sale")
    assert api.call("GET", "/v1/api/events/Jazz2027")[1]["data"]["status"] == "on_sale"

    # Cancelling an event, after a confirmation: its bookings go with it, and the page says how
    # many; the storefront says it is cancelled.
    gone = {"key": "Gone", "name": "Rained Out", "type": "Festival",
            "date": "2030-01-01T20:00:00.000+00:00", "utcOffset": "+00:00",
            "location": {"venue": "The Field", "address": "4 Side Street"},
            "eventGroups": [{"key": "ga-Gone", "category": "General", "price": 30,
                             "currency": "EUR", "qty": 10, "startDate": "2020-01-01T00:00:00Z",
                             "endDate": "2030-01-01T00:00:00Z"}]}
    status, body = api.call("POST", "/v1/api/events", gone, token=token)
    assert status == 201, body
    for _ in range(2):
        status, body = api.call("POST", "/v1/api/books",
                                {"key": "Gone", "groupKeys": [{"key": "ga-Gone", "qty": 1}]})
        assert status == 201, body
    d.get(base + "/admin#/e/Gone")
    b.click("#cancel-event")
    b.wait(lambda: b.find("#confirm").is_displayed(), "the confirmation dialog")
    b.wait_text("#confirm-text", "cannot be undone")
    b.click("#confirm-ok")
    b.wait_text("h1 .badge", "Cancelled")
    b.wait_text("#cancelled-note", "2 bookings were cancelled")
    assert not b.finds("#cancel-event") and not b.finds("#edit")
    b.collect()
    d.get(base + "/#/e/Gone")
    b.wait_text("#event-status", "This event has been cancelled")
    assert not b.find("#hold").is_enabled()
    b.collect()
    d.get(base + "/admin")
    b.wait(lambda: b.finds("#events [data-event='Gone']"), "the events list")

    # Signing out forgets the token.
    b.click("#signout")
    b.wait(lambda: b.finds("#token"), "the sign-in form again")
    assert d.execute_script("return sessionStorage.getItem('booking.token')") is None
    b.collect()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bookingd", required=True)
    parser.add_argument("--booking", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.out):  # a failed run's pictures must not pass for this run's
        if name.endswith(".png"):
            os.remove(os.path.join(args.out, name))
    with tempfile.TemporaryDirectory(prefix="booking-web-") as tmp:
        db = os.path.join(tmp, "web.db")
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        log = open(os.path.join(tmp, "bookingd.log"), "w")
        daemon = subprocess.Popen(
            [args.bookingd, "--db", db, "--listen", "127.0.0.1:%d" % port, "--demo",
             "--hold-ttl", "%ds" % HOLD_TTL, "--threads", "32",
             "--checkout-url", CHECKOUT],
            stdout=log, stderr=subprocess.STDOUT)
        browser = None
        try:
            api = Api(base)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if api.call("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert daemon.poll() is None, "bookingd exited: " + open(log.name).read()
                assert time.monotonic() < deadline, "bookingd did not start"
                time.sleep(0.1)
            browser = Browser(args.out)
            storefront(browser, base, api)
            operator(browser, base, api, args.booking, db)
            browser.collect()
        except BaseException:
            log.flush()
            sys.stderr.write("bookingd's log (last lines):\n" +
                             "".join(open(log.name).readlines()[-40:]))
            raise
        finally:
            if browser:
                browser.d.quit()
            daemon.send_signal(signal.SIGTERM)
            try:
                rc = daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                rc = "killed"
        assert rc == 0, "bookingd exited with %s" % rc
    print("web pages: storefront and operator's page passed; screenshots in " + args.out)


if __name__ == "__main__":
    main()
