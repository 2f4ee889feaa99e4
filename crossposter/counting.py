"""How long a post is, by each platform's own rule.

The splitter asks "does this still fit?" many times per paragraph, and `crossposter preview` must start in
well under a quarter of a second, so everything here is plain stdlib at import time: the `regex` module (for
grapheme clusters and emoji properties) and every compiled pattern are loaded on first use, and pure-ASCII
text takes shortcuts that need no pattern at all.

Public API::

    length(platform, text) -> int          # "bluesky" | "mastodon" | "x"
    fits(platform, text, limit) -> bool    # Bluesky also enforces the 3000-byte cap
    graphemes(text) -> list[str]           # user-perceived characters (regex \\X)
    grapheme_count(text) -> int
    utf8_length(text) -> int
    url_spans(platform, text) -> list[tuple[int, int]]   # the URLs the platform shortens (never cut these)

The rules, and where they come from:

* **Bluesky** counts grapheme clusters (``app.bsky.feed.post.text``: maxGraphemes 300, maxLength 3000
  bytes). The AppView does not shorten links: the text's URL is counted as written (the renderer shortens
  bare URLs before counting, so the counted text is what is sent).
* **Mastodon** (``StatusLengthValidator#countable_text``) replaces every URL it would link (a scheme is
  required: ``http(s)://`` and a few others) by 23 ``x`` and every ``@user@domain`` mention by ``@user``,
  then counts grapheme clusters.
* **X** is twitter-text v3 (``config-v3.json``): NFC first; code points inside four ranges weigh 1, all
  others 2; every URL twitter-text extracts (also without a scheme, like ``example.com``) weighs 23; every
  emoji sequence weighs 2. The URL rules (preceding characters, TLD list, 63-character punycode labels,
  ``t.co`` slugs) follow twitter-text's extractor closely enough to pass its conformance files: every
  weighted-length case of ``validate.yml`` and every URL case of ``extract.yml``. Emoji sequences are
  recognised from Unicode properties instead of twemoji's hard-coded list, so newer ZWJ sequences also
  count 2 (twemoji's old list would count their parts).

No twitter-text library is used: the Python port takes ~0.5 s to import, more than the whole preview may
take. Its weight table and TLD list are embedded below instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

from crossposter.memo import BoundedCache

__all__ = [
    "BLUESKY_MAX_BYTES",
    "PLATFORM_RULES",
    "URL_WEIGHT",
    "fits",
    "grapheme_count",
    "graphemes",
    "length",
    "mastodon_countable_text",
    "url_spans",
    "utf8_length",
    "x_weighted_length",
]

#: Bluesky's second cap on a post's text, in UTF-8 bytes (lexicon ``app.bsky.feed.post``, maxLength).
BLUESKY_MAX_BYTES = 3000
#: What Mastodon and X count for any URL (X: ``transformedURLLength``; Mastodon: ``URL_PLACEHOLDER``).
URL_WEIGHT = 23

#: One line per platform, for `crossposter preview` and the README.
PLATFORM_RULES: dict[str, str] = {
    "bluesky": "grapheme clusters, and at most 3000 UTF-8 bytes",
    "mastodon": "grapheme clusters; each http(s) URL counts 23, @user@domain counts as @user",
    "x": "twitter-text v3 weights: most Latin 1, CJK/emoji 2, every URL 23 (NFC first)",
}

# Code points whose grapheme-cluster break property is not Other, Control or LF (from `regex` 2026.5.9,
# Unicode's GraphemeBreakProperty): only around these can a cluster hold more than one code point.
_GCB_COMPLEX = (
    "\u000d\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1-\u05c2\u05c4-\u05c5\u05c7\u0600-\u0605"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dd\u06df-\u06e4\u06e7-\u06e8\u06ea-\u06ed\u070f\u0711"
    "\u0730-\u074a\u07a6-\u07b0\u07eb-\u07f3\u07fd\u0816-\u0819\u081b-\u0823\u0825-\u0827"
    "\u0829-\u082d\u0859-\u085b\u0890-\u0891\u0897-\u089f\u08ca-\u0903\u093a-\u093c\u093e-\u094f"
    "\u0951-\u0957\u0962-\u0963\u0981-\u0983\u09bc\u09be-\u09c4\u09c7-\u09c8\u09cb-\u09cd\u09d7"
    "\u09e2-\u09e3\u09fe\u0a01-\u0a03\u0a3c\u0a3e-\u0a42\u0a47-\u0a48\u0a4b-\u0a4d\u0a51\u0a70-\u0a71"
    "\u0a75\u0a81-\u0a83\u0abc\u0abe-\u0ac5\u0ac7-\u0ac9\u0acb-\u0acd\u0ae2-\u0ae3\u0afa-\u0aff"
    "\u0b01-\u0b03\u0b3c\u0b3e-\u0b44\u0b47-\u0b48\u0b4b-\u0b4d\u0b55-\u0b57\u0b62-\u0b63\u0b82"
    "\u0bbe-\u0bc2\u0bc6-\u0bc8\u0bca-\u0bcd\u0bd7\u0c00-\u0c04\u0c3c\u0c3e-\u0c44\u0c46-\u0c48"
    "\u0c4a-\u0c4d\u0c55-\u0c56\u0c62-\u0c63\u0c81-\u0c83\u0cbc\u0cbe-\u0cc4\u0cc6-\u0cc8"
    "\u0cca-\u0ccd\u0cd5-\u0cd6\u0ce2-\u0ce3\u0cf3\u0d00-\u0d03\u0d3b-\u0d3c\u0d3e-\u0d44"
    "\u0d46-\u0d48\u0d4a-\u0d4e\u0d57\u0d62-\u0d63\u0d81-\u0d83\u0dca\u0dcf-\u0dd4\u0dd6\u0dd8-\u0ddf"
    "\u0df2-\u0df3\u0e31\u0e33-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb3-\u0ebc\u0ec8-\u0ece\u0f18-\u0f19\u0f35"
    "\u0f37\u0f39\u0f3e-\u0f3f\u0f71-\u0f84\u0f86-\u0f87\u0f8d-\u0f97\u0f99-\u0fbc\u0fc6\u102d-\u1037"
    "\u1039-\u103e\u1056-\u1059\u105e-\u1060\u1071-\u1074\u1082\u1084-\u1086\u108d\u109d\u1100-\u11ff"
    "\u135d-\u135f\u1712-\u1715\u1732-\u1734\u1752-\u1753\u1772-\u1773\u17b4-\u17d3\u17dd"
    "\u180b-\u180d\u180f\u1885-\u1886\u18a9\u1920-\u192b\u1930-\u193b\u1a17-\u1a1b\u1a55-\u1a5e\u1a60"
    "\u1a62\u1a65-\u1a7c\u1a7f\u1ab0-\u1add\u1ae0-\u1aeb\u1b00-\u1b04\u1b34-\u1b44\u1b6b-\u1b73"
    "\u1b80-\u1b82\u1ba1-\u1bad\u1be6-\u1bf3\u1c24-\u1c37\u1cd0-\u1cd2\u1cd4-\u1ce8\u1ced\u1cf4"
    "\u1cf7-\u1cf9\u1dc0-\u1dff\u200c-\u200d\u20d0-\u20f0\u2cef-\u2cf1\u2d7f\u2de0-\u2dff"
    "\u302a-\u302f\u3099-\u309a\ua66f-\ua672\ua674-\ua67d\ua69e-\ua69f\ua6f0-\ua6f1\ua802\ua806\ua80b"
    "\ua823-\ua827\ua82c\ua880-\ua881\ua8b4-\ua8c5\ua8e0-\ua8f1\ua8ff\ua926-\ua92d\ua947-\ua953"
    "\ua960-\ua97c\ua980-\ua983\ua9b3-\ua9c0\ua9e5\uaa29-\uaa36\uaa43\uaa4c-\uaa4d\uaa7c\uaab0"
    "\uaab2-\uaab4\uaab7-\uaab8\uaabe-\uaabf\uaac1\uaaeb-\uaaef\uaaf5-\uaaf6\uabe3-\uabea"
    "\uabec-\uabed\uac00-\ud7a3\ud7b0-\ud7c6\ud7cb-\ud7fb\ufb1e\ufe00-\ufe0f\ufe20-\ufe2f"
    "\uff9e-\uff9f\U000101fd\U000102e0\U00010376-\U0001037a\U00010a01-\U00010a03\U00010a05-\U00010a06"
    "\U00010a0c-\U00010a0f\U00010a38-\U00010a3a\U00010a3f\U00010ae5-\U00010ae6\U00010d24-\U00010d27"
    "\U00010d69-\U00010d6d\U00010eab-\U00010eac\U00010efa-\U00010eff\U00010f46-\U00010f50"
    "\U00010f82-\U00010f85\U00011000-\U00011002\U00011038-\U00011046\U00011070\U00011073-\U00011074"
    "\U0001107f-\U00011082\U000110b0-\U000110ba\U000110bd\U000110c2\U000110cd\U00011100-\U00011102"
    "\U00011127-\U00011134\U00011145-\U00011146\U00011173\U00011180-\U00011182\U000111b3-\U000111c0"
    "\U000111c2-\U000111c3\U000111c9-\U000111cc\U000111ce-\U000111cf\U0001122c-\U00011237\U0001123e"
    "\U00011241\U000112df-\U000112ea\U00011300-\U00011303\U0001133b-\U0001133c\U0001133e-\U00011344"
    "\U00011347-\U00011348\U0001134b-\U0001134d\U00011357\U00011362-\U00011363\U00011366-\U0001136c"
    "\U00011370-\U00011374\U000113b8-\U000113c0\U000113c2\U000113c5\U000113c7-\U000113ca"
    "\U000113cc-\U000113d2\U000113e1-\U000113e2\U00011435-\U00011446\U0001145e\U000114b0-\U000114c3"
    "\U000115af-\U000115b5\U000115b8-\U000115c0\U000115dc-\U000115dd\U00011630-\U00011640"
    "\U000116ab-\U000116b7\U0001171d-\U0001171f\U00011722-\U0001172b\U0001182c-\U0001183a"
    "\U00011930-\U00011935\U00011937-\U00011938\U0001193b-\U00011943\U000119d1-\U000119d7"
    "\U000119da-\U000119e0\U000119e4\U00011a01-\U00011a0a\U00011a33-\U00011a39\U00011a3b-\U00011a3e"
    "\U00011a47\U00011a51-\U00011a5b\U00011a84-\U00011a99\U00011b60-\U00011b67\U00011c2f-\U00011c36"
    "\U00011c38-\U00011c3f\U00011c92-\U00011ca7\U00011ca9-\U00011cb6\U00011d31-\U00011d36\U00011d3a"
    "\U00011d3c-\U00011d3d\U00011d3f-\U00011d47\U00011d8a-\U00011d8e\U00011d90-\U00011d91"
    "\U00011d93-\U00011d97\U00011ef3-\U00011ef6\U00011f00-\U00011f03\U00011f34-\U00011f3a"
    "\U00011f3e-\U00011f42\U00011f5a\U00013440\U00013447-\U00013455\U0001611e-\U0001612f"
    "\U00016af0-\U00016af4\U00016b30-\U00016b36\U00016d63\U00016d67-\U00016d6a\U00016f4f"
    "\U00016f51-\U00016f87\U00016f8f-\U00016f92\U00016fe4\U00016ff0-\U00016ff1\U0001bc9d-\U0001bc9e"
    "\U0001cf00-\U0001cf2d\U0001cf30-\U0001cf46\U0001d165-\U0001d169\U0001d16d-\U0001d172"
    "\U0001d17b-\U0001d182\U0001d185-\U0001d18b\U0001d1aa-\U0001d1ad\U0001d242-\U0001d244"
    "\U0001da00-\U0001da36\U0001da3b-\U0001da6c\U0001da75\U0001da84\U0001da9b-\U0001da9f"
    "\U0001daa1-\U0001daaf\U0001e000-\U0001e006\U0001e008-\U0001e018\U0001e01b-\U0001e021"
    "\U0001e023-\U0001e024\U0001e026-\U0001e02a\U0001e08f\U0001e130-\U0001e136\U0001e2ae"
    "\U0001e2ec-\U0001e2ef\U0001e4ec-\U0001e4ef\U0001e5ee-\U0001e5ef\U0001e6e3\U0001e6e6"
    "\U0001e6ee-\U0001e6ef\U0001e6f5\U0001e8d0-\U0001e8d6\U0001e944-\U0001e94a\U0001f1e6-\U0001f1ff"
    "\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)

# --- twitter-text v3 configuration -----------------------------------------------------------------------
# From twitter-text's config/v3.json (Copyright 2018 Twitter, Inc., Apache License 2.0,
# https://github.com/twitter/twitter-text). Code points inside these inclusive ranges weigh 100, every
# other code point weighs the default 200; the sum is divided by the scale (100). v2 is the same table with
# emoji parsing off (each code point of an emoji sequence weighed on its own).
X_CONFIG_V3: dict[str, Any] = {
    "version": 3,
    "maxWeightedTweetLength": 280,
    "scale": 100,
    "defaultWeight": 200,
    "emojiParsingEnabled": True,
    "transformedURLLength": 23,
    "ranges": [
        {"start": 0, "end": 4351, "weight": 100},
        {"start": 8192, "end": 8205, "weight": 100},
        {"start": 8208, "end": 8223, "weight": 100},
        {"start": 8242, "end": 8247, "weight": 100},
    ],
}

# Top-level domains twitter-text recognises, split on spaces: generic ones, then country codes (the
# difference matters nowhere now, but twitter-text keeps them apart). Data from twitter-text's TLD lists
# (Copyright 2018 Twitter, Inc., Apache License 2.0; themselves from IANA's root zone), as shipped in its
# Python port twitter-text-parser 3.0.0 (MIT).
_GTLDS = (
    "aaa aarp abarth abb abbott abbvie abc able abogado abudhabi academy accenture accountant accountants "
    "aco active actor adac ads adult aeg aero aetna afamilycompany afl africa agakhan agency aig aigo "
    "airbus airforce airtel akdn alfaromeo alibaba alipay allfinanz allstate ally alsace alstom "
    "americanexpress americanfamily amex amfam amica amsterdam analytics android anquan anz aol "
    "apartments app apple aquarelle arab aramco archi army arpa art arte asda asia associates athleta "
    "attorney auction audi audible audio auspost author auto autos avianca aws axa azure baby baidu "
    "banamex bananarepublic band bank bar barcelona barclaycard barclays barefoot bargains baseball "
    "basketball bauhaus bayern bbc bbt bbva bcg bcn beats beauty beer bentley berlin best bestbuy bet "
    "bharti bible bid bike bing bingo bio biz black blackfriday blanco blockbuster blog bloomberg blue "
    "bms bmw bnl bnpparibas boats boehringer bofa bom bond boo book booking boots bosch bostik boston bot "
    "boutique box bradesco bridgestone broadway broker brother brussels budapest bugatti build builders "
    "business buy buzz bzh cab cafe cal call calvinklein cam camera camp cancerresearch canon capetown "
    "capital capitalone car caravan cards care career careers cars cartier casa case caseih cash casino "
    "cat catering catholic cba cbn cbre cbs ceb center ceo cern cfa cfd chanel channel charity chase chat "
    "cheap chintai chloe christmas chrome chrysler church cipriani circle cisco citadel citi citic city "
    "cityeats claims cleaning click clinic clinique clothing cloud club clubmed coach codes coffee "
    "college cologne com comcast commbank community company compare computer comsec condos construction "
    "consulting contact contractors cooking cookingchannel cool coop corsica country coupon coupons "
    "courses cpa credit creditcard creditunion cricket crown crs cruise cruises csc cuisinella cymru cyou "
    "dabur dad dance data date dating datsun day dclk dds deal dealer deals degree delivery dell deloitte "
    "delta democrat dental dentist desi design dev dhl diamonds diet digital direct directory discount "
    "discover dish diy dnp docs doctor dodge dog doha domains doosan dot download drive dtv dubai duck "
    "dunlop duns dupont durban dvag dvr earth eat eco edeka edu education email emerck energy engineer "
    "engineering enterprises epost epson equipment ericsson erni esq estate esurance etisalat eurovision "
    "eus events everbank exchange expert exposed express extraspace fage fail fairwinds faith family fan "
    "fans farm farmers fashion fast fedex feedback ferrari ferrero fiat fidelity fido film final finance "
    "financial fire firestone firmdale fish fishing fit fitness flickr flights flir florist flowers "
    "flsmidth fly foo food foodnetwork football ford forex forsale forum foundation fox free fresenius "
    "frl frogans frontdoor frontier ftr fujitsu fujixerox fun fund furniture futbol fyi gal gallery gallo "
    "gallup game games gap garden gay gbiz gdn gea gent genting george ggee gift gifts gives giving glade "
    "glass gle global globo gmail gmbh gmo gmx godaddy gold goldpoint golf goo goodhands goodyear goog "
    "google gop got gov grainger graphics gratis green gripe grocery group guardian gucci guge guide "
    "guitars guru hair hamburg hangout haus hbo hdfc hdfcbank health healthcare help helsinki here hermes "
    "hgtv hiphop hisamitsu hitachi hiv hkt hockey holdings holiday homedepot homegoods homes homesense "
    "honda honeywell horse hospital host hosting hot hoteles hotels hotmail house how hsbc htc hughes "
    "hyatt hyundai ibm icbc ice icu ieee ifm iinet ikano imamat imdb immo immobilien inc industries "
    "infiniti info ing ink institute insurance insure int intel international intuit investments ipiranga "
    "irish iselect ismaili ist istanbul itau itv iveco iwc jaguar java jcb jcp jeep jetzt jewelry jio jlc "
    "jll jmp jnj jobs joburg jot joy jpmorgan jprs juegos juniper kaufen kddi kerryhotels kerrylogistics "
    "kerryproperties kfh kia kim kinder kindle kitchen kiwi koeln komatsu kosher kpmg kpn krd kred "
    "kuokgroup kyoto lacaixa ladbrokes lamborghini lamer lancaster lancia lancome land landrover lanxess "
    "lasalle lat latino latrobe law lawyer lds lease leclerc lefrak legal lego lexus lgbt liaison lidl "
    "life lifeinsurance lifestyle lighting like lilly limited limo lincoln linde link lipsy live living "
    "lixil llc llp loan loans locker locus loft lol london lotte lotto love lpl lplfinancial ltd ltda "
    "lundbeck lupin luxe luxury macys madrid maif maison makeup man management mango map market marketing "
    "markets marriott marshalls maserati mattel mba mcd mcdonalds mckinsey med media meet melbourne meme "
    "memorial men menu meo merckmsd metlife miami microsoft mil mini mint mit mitsubishi mlb mls mma mobi "
    "mobile mobily moda moe moi mom monash money monster montblanc mopar mormon mortgage moscow moto "
    "motorcycles mov movie movistar msd mtn mtpc mtr museum mutual mutuelle nab nadex nagoya name "
    "nationwide natura navy nba nec net netbank netflix network neustar new newholland news next "
    "nextdirect nexus nfl ngo nhk nico nike nikon ninja nissan nissay nokia northwesternmutual norton now "
    "nowruz nowtv nra nrw ntt nyc obi observer off office okinawa olayan olayangroup oldnavy ollo omega "
    "one ong onion onl online onyourside ooo open oracle orange org organic orientexpress origins osaka "
    "otsuka ott ovh page pamperedchef panasonic panerai paris pars partners parts party passagens pay "
    "pccw pet pfizer pharmacy phd philips phone photo photography photos physio piaget pics pictet "
    "pictures pid pin ping pink pioneer pizza place play playstation plumbing plus pnc pohl poker politie "
    "porn post pramerica praxi press prime pro prod productions prof progressive promo properties "
    "property protection pru prudential pub pwc qpon quebec quest qvc racing radio raid read realestate "
    "realtor realty recipes red redstone redumbrella rehab reise reisen reit reliance ren rent rentals "
    "repair report republican rest restaurant review reviews rexroth rich richardli ricoh rightathome ril "
    "rio rip rmit rocher rocks rodeo rogers room rsvp rugby ruhr run rwe ryukyu saarland safe safety "
    "sakura sale salon samsclub samsung sandvik sandvikcoromant sanofi sap sapo sarl sas save saxo sbi "
    "sbs sca scb schaeffler schmidt scholarships school schule schwarz science scjohnson scor scot search "
    "seat secure security seek select sener services ses seven sew sex sexy sfr shangrila sharp shaw "
    "shell shia shiksha shoes shop shopping shouji show showtime shriram silk sina singles site ski skin "
    "sky skype sling smart smile sncf soccer social softbank software sohu solar solutions song sony soy "
    "space spiegel sport spot spreadbetting srl srt stada staples star starhub statebank statefarm "
    "statoil stc stcgroup stockholm storage store stream studio study style sucks supplies supply support "
    "surf surgery suzuki swatch swiftcover swiss sydney symantec systems tab taipei talk taobao target "
    "tatamotors tatar tattoo tax taxi tci tdk team tech technology tel telecity telefonica temasek tennis "
    "teva thd theater theatre tiaa tickets tienda tiffany tips tires tirol tjmaxx tjx tkmaxx tmall today "
    "tokyo tools top toray toshiba total tours town toyota toys trade trading training travel "
    "travelchannel travelers travelersinsurance trust trv tube tui tunes tushu tvs ubank ubs uconnect "
    "unicom university uno uol ups vacations vana vanguard vegas ventures verisign vermögensberater "
    "vermögensberatung versicherung vet viajes video vig viking villas vin vip virgin visa vision vista "
    "vistaprint viva vivo vlaanderen vodka volkswagen volvo vote voting voto voyage vuelos wales walmart "
    "walter wang wanggou warman watch watches weather weatherchannel webcam weber website wed wedding "
    "weibo weir whoswho wien wiki williamhill win windows wine winners wme wolterskluwer woodside work "
    "works world wow wtc wtf xbox xerox xfinity xihuan xin xperia xxx xyz yachts yahoo yamaxun yandex "
    "yodobashi yoga yokohama you youtube yun zappos zara zero zip zippo zone zuerich дети католик ком "
    "москва онлайн орг рус сайт קום ابوظبي اتصالات ارامكو العليان بازار بيتك شبكة عرب كاثوليك كوم موبايلي "
    "موقع همراه कॉम नेट संगठन คอม みんな クラウド グーグル コム ストア セール ファッション ポイント 世界 中信 中文网 企业 佛山 信息 健康 八卦 公司 公益 商城 "
    "商店 商标 嘉里 嘉里大酒店 在线 大众汽车 大拿 天主教 娱乐 家電 工行 广东 微博 慈善 我爱你 手机 手表 招聘 政务 政府 新闻 时尚 書籍 机构 淡马锡 游戏 点看 珠宝 移动 组织机构 "
    "网址 网店 网站 网络 联通 诺基亚 谷歌 购物 通販 集团 電訊盈科 飞利浦 食品 餐厅 香格里拉 닷넷 닷컴 삼성 "
)
_CCTLDS = (
    "ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq br "
    "bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee "
    "eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm "
    "hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li "
    "lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne "
    "nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc "
    "sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tp tr tt "
    "tv tw tz ua ug uk um us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw ελ ευ бг бел ею мкд мон рф "
    "срб укр қаз հայ الاردن البحرين الجزائر السعودية المغرب امارات ایران بارت بھارت تونس سودان سورية عراق "
    "عمان فلسطين قطر مصر مليسيا موريتانيا پاکستان ڀارت भारत भारतम् भारोत বাংলা ভারত ভাৰত ਭਾਰਤ ભારત ଭାରତ "
    "இந்தியா இலங்கை சிங்கப்பூர் భారత్ ಭಾರತ ഭാരതം ලංකා ไทย ລາວ გე 中国 中國 台湾 台灣 新加坡 澳門 香港 한국 "
)

#: The default emoji weight and URL weight in "units" (1 unit = weight 100 = one Latin character).
_X_EMOJI_UNITS = X_CONFIG_V3["defaultWeight"] // X_CONFIG_V3["scale"]


def _x_light_class() -> str:
    """The character class of code points that weigh 1 on X, built from the embedded v3 table."""
    parts = []
    for r in X_CONFIG_V3["ranges"]:
        if r["weight"] != X_CONFIG_V3["scale"]:  # the one-regex counting below relies on weights 1 and 2
            raise AssertionError("twitter-text table with weights other than 1 and 2 is not supported")
        parts.append(f"\\U{r['start']:08x}-\\U{r['end']:08x}")
    return "".join(parts)


# --- lazily compiled patterns ----------------------------------------------------------------------------


@cache
def _grapheme_re() -> Any:
    import regex  # ~10 ms to import: only when some text is not plain ASCII

    return regex.compile(r"\X", regex.DOTALL)


@cache
def _complex_run_re() -> re.Pattern[str]:
    """Runs of "complex" code points (the only places where a cluster can span code points)."""
    return re.compile(f"[{_GCB_COMPLEX}]+")


@cache
def _x_heavy_re() -> re.Pattern[str]:
    """Runs of code points outside the weight-1 ranges: removing them tells how many weigh 2."""
    return re.compile(f"[^{_x_light_class()}]+")


@cache
def _emoji_re() -> Any:
    """One emoji sequence (keycap, flag, ZWJ sequence, or one emoji with a modifier, VS16 or tags).

    twitter-text uses twemoji's generated list; Unicode properties recognise the same sequences (and newer
    ones). Like twemoji, ©, ® and ™ are emoji only with VS16 (U+FE0F): alone, © and ® weigh 1.
    """
    import regex

    pict = r"(?:\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\ufe0f)?)"
    single = (
        r"(?:[\u00a9\u00ae\u2122]\ufe0f|(?![#*0-9\u00a9\u00ae\u2122])\p{Emoji}"
        r"(?:\p{Emoji_Modifier}|\ufe0f|[\U000e0020-\U000e007e]+\U000e007f)?)"
    )
    return regex.compile(
        rf"[#*0-9]\ufe0f?\u20e3|\p{{Regional_Indicator}}{{2}}|{pict}(?:\u200d{pict})+|{single}"
    )


# Characters that can never be part of a domain label (twitter-text's punctuation, spaces and invalid
# characters). Everything else, any script, is a domain character.
_NOT_DOMAIN = (
    r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
    r"\t-\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    r"\ufffe\ufeff\uffff\u202a-\u202e"
)
_D = f"[^{_NOT_DOMAIN}]"
_LABEL = rf"(?>{_D}(?:[-_]*{_D})*)"
# A URL may not follow a letter, digit, @, $ or # (twitter-text's valid_url_preceding_chars); directional
# marks before it are fine. A scheme-less candidate starts at the beginning of a run of domain characters.
_PRECEDING = r"(?<![a-zA-Z0-9@\uff20$#\uff03\ufffe\ufeff\uffff])"
# ...or where ASCII follows other scripts ("日本語example.com": twitter-text finds example.com there too).
_NOT_MID = rf"(?:(?<!{_D})(?<![-_])|(?<=[^\x00-\x7f])(?=[\x00-\x7f]))"
_LATIN = (
    r"\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    r"\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = r"\u0400-\u04ff"


class _UrlRules:
    """One platform's URL patterns (a plain class: @dataclass costs milliseconds at import).

    Only the candidate (scheme and dotted host) is one regex. Path and query are matched as runs of allowed
    characters, then trimmed back to the last allowed ending character: the same result as twitter-text's
    nested path grammar, for a fraction of its compile time (the grammar repeats big character classes a
    dozen times, and compiling them costs tens of milliseconds in the preview's start-up).
    """

    __slots__ = ("candidate", "path_run", "path_end", "query_run", "query_end")

    def __init__(
        self, candidate: str, path_chars: str, path_end: str, query_chars: str, query_end: str
    ) -> None:
        self.candidate = re.compile(candidate)
        parens = rf"\((?:{path_chars}+|{path_chars}*\({path_chars}+\){path_chars}*)\)"
        self.path_run = re.compile(rf"(?:{path_chars}|{parens})*+")  # characters and balanced parentheses
        self.path_end = re.compile(path_end)  # what a path may end with (besides a closing parenthesis)
        self.query_run = re.compile(f"{query_chars}*+")
        self.query_end = re.compile(query_end)

    def tail(self, text: str, pos: int, limit: int) -> tuple[int, bool]:
        """End of the port, path and query after a domain ending at `pos`; and whether there is a path."""
        if text[pos : pos + 1] == ":":
            m = _PORT.match(text, pos)
            if m:
                pos = m.end()
        has_path = pos < limit and text[pos : pos + 1] == "/"
        if has_path:
            end = self.path_run.match(text, pos + 1, limit).end()
            while end > pos + 1 and text[end - 1] != ")" and not self.path_end.match(text, end - 1):
                end -= 1
            pos = end
        if pos < limit and text[pos : pos + 1] == "?":
            end = self.query_run.match(text, pos + 1, limit).end()
            while end > pos + 1 and not self.query_end.match(text, end - 1):
                end -= 1
            if end > pos + 1:  # a query needs at least one character it may end with
                pos = end
        return pos, has_path


_PORT = re.compile(r":[0-9]+")
_TCO = re.compile(r"(?i:https?://t\.co/)([a-zA-Z0-9]+)")


@cache
def _x_rules() -> _UrlRules:
    # twitter-text's validGeneralUrlPathChars, validUrlPathEndingChars, validUrlQueryChars/EndingChars.
    return _UrlRules(
        rf"{_PRECEDING}(?:(?P<proto>(?i:https?)://)|{_NOT_MID})(?P<host>(?:{_LABEL}\.)+{_LABEL})",
        rf"[a-zA-Z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN}]",
        rf"[+\-a-zA-Z{_CYRILLIC}0-9=_#/{_LATIN}]",
        r"[a-zA-Z0-9!?*'();:&=+$/%#\[\]\-_.,~|@]",
        r"[a-zA-Z0-9\-_&=#/]",
    )


@cache
def _mastodon_rules() -> _UrlRules:
    # Mastodon's config/initializers/twitter_regex.rb: twitter-text's domain rules, a few more schemes,
    # far more permissive path and query characters; the scheme is required for a status's length.
    # Its UCHARS (U+00A0-U+D7FF, U+F900-U+FDCF, U+FDF0-U+FFEF, U+E000-U+F8FF, the supplementary planes but
    # the tags block) is written as a negated class: a positive class over 55,000 code points takes re
    # ~4 ms to compile.
    uchars = r"[^\x00-\x9f\ud800-\udfff\ufdd0-\ufdef\ufff0-\uffff\U000e0000-\U000e0fff]"
    return _UrlRules(
        rf"{_PRECEDING}(?P<proto>(?i:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://)"
        rf"(?P<host>(?:{_LABEL}\.)+{_LABEL})",
        r"[^\s<>()?]",
        r"""[^\s()?!*"'「」<>;:=,.$%\[\]~&|@]""",
        rf"(?:[a-zA-Z0-9!?*'();:&=+$/%#\[\]\-_.,~|@^]|{uchars})",
        rf"(?:[a-zA-Z0-9_&=#/\-]|{uchars})",
    )


@cache
def _mention_re() -> re.Pattern[str]:
    """Mastodon's Account::MENTION_RE: @user, optionally @domain (only the @user part is counted)."""
    return re.compile(
        r"(?<![=/\w])@(?P<user>[a-zA-Z0-9_]+(?:[a-zA-Z0-9_.-]+[a-zA-Z0-9_]+)?)(?:@(?P<domain>[\w.-]+\w+))?"
    )


@cache
def _tld_sets() -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(_GTLDS.split()), frozenset(_CCTLDS.split())


_TLD_BAD_FOLLOWER = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@+-"


@cache
def _ascii_domain_re() -> re.Pattern[str]:
    """twitter-text's valid_ascii_domain: ASCII (and Latin-accented) labels; the TLD may be an IDN one."""
    return re.compile(rf"(?:[\-a-zA-Z0-9{_LATIN}]+\.)+{_D}+")


_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG = 40


# --- URL extraction (twitter-text's rules, shared by X and Mastodon) -------------------------------------


def _tld_length(text: str, start: int, label: str, limit: int) -> int:
    """Length of the TLD that `label` (at `text[start:]`) starts with, or 0.

    twitter-text's TLD alternatives end in a lookahead: the TLD may be followed by anything except
    [0-9a-z@+-] (or by the end, `limit`); so "example.comです" ends its domain after "com" and
    "example.com-x" has no domain at all.
    """
    gtlds, cctlds = _tld_sets()
    end = start + len(label)
    follower = text[end : end + 1] if end < limit else ""
    low = label.lower()
    if (low in gtlds or low in cctlds) and not (follower and follower in _TLD_BAD_FOLLOWER):
        return len(label)
    if low.startswith("xn--"):  # punycode TLD: xn--[-0-9a-z]+
        i = 4
        while i < len(low) and (low[i] in "-0123456789abcdefghijklmnopqrstuvwxyz"):
            i += 1
        if i > 4:
            return i
    # A TLD that is a prefix of the label: only where the next character may follow a TLD.
    for i in range(len(label) - 1, 0, -1):
        if label[i] not in _TLD_BAD_FOLLOWER and (low[:i] in gtlds or low[:i] in cctlds):
            return i
    return 0


def _cut_domain(text: str, start: int, host: str, limit: int, underscore_ok: bool) -> int | None:
    """End (in `text`) of the longest valid domain that `host` (at `text[start:]`) starts with.

    The regexes' greedy sub-domain repetition means the TLD is the right-most label that is one; the label
    before it may not hold "_" (sub-domains may), unless `underscore_ok` (the ASCII-domain pass).
    """
    labels = host.split(".")
    offsets = []
    pos = start
    for label in labels:
        offsets.append(pos)
        pos += len(label) + 1
    for k in range(len(labels) - 1, 0, -1):
        if not labels[k - 1] or (not underscore_ok and "_" in labels[k - 1]):
            continue
        n = _tld_length(text, offsets[k], labels[k], limit)
        if n:
            return offsets[k] + n
    return None


def _punycode_length(domain: str) -> int | None:
    """Length of the ASCII (punycode) form of `domain`, or None when a label is empty or over 63."""
    if domain[:4].lower() == "xn--" and not domain.isascii():
        return None
    labels = domain.split(".")
    total = len(labels) - 1
    for label in labels:
        if label.isascii():
            n = len(label)
        else:
            try:
                n = 4 + len(label.encode("punycode"))
            except UnicodeError:
                return None
        if not 1 <= n <= 63:
            return None
        total += n
    return total


def _is_valid_url(url_len: int, protocol: str | None, domain: str) -> bool:
    """twitter-text's isValidUrl: every label fits DNS once punycoded, and the URL is <= 4096."""
    puny = _punycode_length(domain)
    if puny is None:
        return False
    return len(protocol or "https://") + url_len + puny - len(domain) <= _MAX_URL_LENGTH


_RUN_STOP_CHARS = (
    "!'#%&()*+,\\/:;<=>?@[]^{|}~$\t\n\x0b\x0c\r \x85\xa0\u1680\u180e\u2028\u2029\u202f\u205f\u3000"
    "\ufffe\ufeff\uffff\u202a\u202b\u202c\u202d\u202e\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a"
)
# Characters that end a run of domain characters, dots, "-" and "_"; and those a host dot cannot touch.
_RUN_STOP = frozenset(_RUN_STOP_CHARS)
_EDGE_STOP = frozenset(_RUN_STOP_CHARS + "-_.")


@cache
def _run_re(stop_at_dot: bool) -> re.Pattern[str]:
    """A run of characters up to the next run stop (or dot)."""
    chars = re.escape(_RUN_STOP_CHARS + ("." if stop_at_dot else ""))
    return re.compile(f"[^{chars}]*")


def _next_region(text: str, rev: str, pos: int, without_protocol: bool) -> tuple[int, int, int] | None:
    """The next stretch of `text` (from `pos`) that can hold a URL, so the candidate regex runs only there.

    Scanning a whole post with a lookbehind-led pattern costs ~0.4 µs a character; every URL has a "."
    between two domain characters followed by a TLD (and, for Mastodon, a "://"), which str.find and a
    set lookup spot at C speed. The region is the run of domain characters, dots, "-" and "_" around it,
    plus a scheme right before it; the third value is where to look next when the region holds no
    candidate (a scheme-led one may start inside this region's run: "https://https://example.com").
    `rev` is `text` reversed, so that the walk back to the start of the run is a regex match too.
    """
    n = len(text)
    scan = pos
    while True:
        if without_protocol:
            d = text.find(".", scan if scan > 0 else 1)
            if d < 0 or d + 1 >= n:
                return None
            scan = d + 1
            if text[d - 1] in _EDGE_STOP or text[d + 1] in _EDGE_STOP:
                continue
            label_end = _run_re(True).match(text, d + 1).end()
            label = text[d + 1 : label_end]
            # Most dotted words ("e.g.", "3.5", "file.txt") have no TLD after the dot: no regex needed.
            if not _tld_length(label, 0, label, len(label)):
                continue
            left = n - _run_re(False).match(rev, n - d).end()
            right = d + 1
        else:
            d = text.find("://", scan)
            if d < 0:
                return None
            scan = d + 1
            left = right = d + 3
        if text[left - 3 : left] == "://":  # a scheme: letters before "://"
            left -= 3
            colon = left
            while left > pos and left > colon - 10 and text[left - 1].isascii() and text[left - 1].isalpha():
                left -= 1
        right = _run_re(False).match(text, right).end()
        while text[right : right + 3] == "://":  # the run ends in a scheme: its URL belongs here too
            right = _run_re(False).match(text, right + 3).end()
        left = max(left, pos)
        return left, right, right if without_protocol else d + 1


def _extract_urls(text: str, rules: _UrlRules, without_protocol: bool) -> list[tuple[int, int]]:
    """URL spans in `text`, scanning left to right like twitter-text's extractUrlsWithIndices."""
    spans: list[tuple[int, int]] = []
    pos = 0
    n = len(text)
    rev = text[::-1] if without_protocol else ""
    while pos < n:
        region = _next_region(text, rev, pos, without_protocol)
        if region is None:
            break
        m = rules.candidate.search(text, region[0], region[1])
        if m is None:
            pos = region[2]
            continue
        protocol = m.group("proto")
        host_start = m.start("host")
        domain_end = _cut_domain(text, host_start, m.group("host"), n, underscore_ok=False)
        if domain_end is None:  # no TLD: the regex would not have matched here; it tries the next start
            pos = m.start() + 1
            continue
        end, has_path = rules.tail(text, domain_end, n)
        start = m.start()
        # twitter-text's regex consumes the character before a URL, so after a match the next URL needs a
        # preceding character of its own: the earliest start is one past this match.
        pos = end + 1
        domain = text[host_start:domain_end]
        if not _is_valid_url(end - start, protocol, domain):
            continue
        if protocol:
            short = _TCO.match(text, start, end)
            if short:  # a t.co link ends after its slug (and query); a slug over 40 is no link at all
                if len(short.group(1)) > _MAX_TCO_SLUG:
                    continue
                end = (
                    rules.tail(text, short.end(), end)[0]
                    if text[short.end() : short.end() + 1] == "?"
                    else short.end()
                )
            spans.append((start, end))
            continue
        if not without_protocol or text[start - 1 : start] in (".", "/", "-", "_"):
            continue
        # Without a scheme only the ASCII (and Latin-accented) domains inside count, each on its own;
        # the last one takes the path when there is one.
        found: list[list[int]] = []
        at = host_start
        while at < domain_end:
            a = _ascii_domain_re().search(text, at, domain_end)
            if a is None:
                break
            a_end = _cut_domain(text, a.start(), a.group(), domain_end, underscore_ok=True)
            if a_end is None:  # the regex would retry one character on: same labels until the first dot
                at = a.start() + a.group().index(".") + 1
                continue
            found.append([a.start(), a_end])
            at = a_end
        if found and has_path:
            found[-1][1] = end
        spans.extend((s, e) for s, e in found)
    return spans


def _x_url_spans(text: str) -> list[tuple[int, int]]:
    if "." not in text:  # twitter-text's own shortcut: every URL has a dot in its domain
        return []
    return _extract_urls(text, _x_rules(), without_protocol=True)


def _mastodon_url_spans(text: str) -> list[tuple[int, int]]:
    if "://" not in text:
        return []
    return _extract_urls(text, _mastodon_rules(), without_protocol=False)


# --- public API --------------------------------------------------------------------------------------------


def graphemes(text: str) -> list[str]:
    """The user-perceived characters of `text` (extended grapheme clusters, `regex`'s ``\\X``)."""
    if text.isascii() and "\r\n" not in text:
        return list(text)
    return _grapheme_re().findall(text)


def grapheme_count(text: str) -> int:
    """How many grapheme clusters `text` has (Bluesky's and Mastodon's unit).

    ``regex``'s ``\\X`` costs ~0.6 µs a character, and most characters (Latin, CJK, Cyrillic, most
    emoji) are clusters of their own whatever surrounds them. Only the windows around "complex" code
    points (combining marks, ZWJ, modifiers, Hangul jamo, regional indicators, CR...) are handed to ``\\X``;
    between two simple code points there is always a cluster boundary, so the windows count independently.
    """
    if text.isascii():
        return len(text) - text.count("\r\n")  # CR LF is the only ASCII cluster of two
    if not has_complex(text):
        return len(text)
    n = len(text)
    total = n
    clusters = None
    win_start = win_end = 0
    for m in _complex_run_re().finditer(text):
        start, end = max(m.start() - 1, 0), min(m.end() + 1, n)
        # Overlapping windows must merge; near ones may (\\X finds the certain breaks between the simple
        # code points in the gap), and one call is cheaper than two.
        if start < win_end + 8:
            win_end = end
            continue
        if win_end:
            clusters = clusters or _grapheme_re()
            total += len(clusters.findall(text, win_start, win_end)) - (win_end - win_start)
        win_start, win_end = start, end
    if win_end:
        clusters = clusters or _grapheme_re()
        total += len(clusters.findall(text, win_start, win_end)) - (win_end - win_start)
    return total


#: Code point -> whether it is "complex" (see grapheme_count), filled on first sight of each character
#: (room for every code point: it never evicts).
_COMPLEX_CHAR: BoundedCache[str, bool] = BoundedCache(0x110000)


def has_complex(text: str) -> bool:
    """Whether `text` holds a code point around which a cluster may span more than one code point.

    A text has few distinct characters, and the complex class as a pattern costs ~0.25 µs a character
    (its astral ranges defeat the compiled charset's bitmap), so each distinct character is looked up once.
    """
    known = _COMPLEX_CHAR.get
    for ch in set(text):
        if ch < "\u0300" and ch != "\r":  # Latin-1 and friends: nothing below U+0300 but CR is complex
            continue
        v = known(ch)
        if v is None:
            v = _COMPLEX_CHAR.put(ch, _complex_run_re().match(ch) is not None)
        if v:
            return True
    return False


def utf8_length(text: str) -> int:
    """Size of `text` in UTF-8 bytes (Bluesky's second limit; facet offsets use the same unit)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _units(segment: str) -> int:
    """X weight of `segment` counted character by character: 1 per light code point, 2 per heavy one."""
    if segment.isascii():
        return len(segment)
    return 2 * len(segment) - len(_x_heavy_re().sub("", segment))


def x_weighted_length(text: str, *, emoji_parsing: bool = True) -> int:
    """twitter-text's weightedLength. `emoji_parsing=False` gives the v2 behaviour (for the v2 test set)."""
    t = unicodedata.normalize("NFC", text)
    total = _units(t)
    entities: list[tuple[int, int, int]] = [(s, 0, e) for s, e in _x_url_spans(t)]
    if emoji_parsing and not t.isascii():
        entities.extend((m.start(), 1, m.end()) for m in _emoji_re().finditer(t))
    if entities:
        entities.sort()
        done = 0
        for start, kind, end in entities:
            if start < done:  # inside an entity already counted (twitter-text skips past it)
                continue
            total += (URL_WEIGHT if kind == 0 else _X_EMOJI_UNITS) - _units(t[start:end])
            done = end
    return total


def mastodon_countable_text(text: str) -> str:
    """The text Mastodon counts: each linked URL as 23 ``x``, each ``@user@domain`` as ``@user``."""
    if "://" not in text and "@" not in text:
        return text
    entities: list[tuple[int, int, str]] = [(s, e, "x" * URL_WEIGHT) for s, e in _mastodon_url_spans(text)]
    if "@" in text or "\uff20" in text:
        for m in _mention_re().finditer(text):
            after = text[m.end() : m.end() + 3]
            if after[:1] in ("@", "\uff20") or after == "://" or (after and _is_latin_accent(after[0])):
                continue
            domain = m.group("domain")
            if domain and len(domain) <= 253:
                entities.append((m.start(), m.end(), "@" + m.group("user")))
            elif not domain:
                entities.append((m.start(), m.end(), m.group(0)))
    if not entities:
        return text
    entities.sort()
    out = []
    done = 0
    for start, end, replacement in entities:
        if start < done:  # Extractor.remove_overlapping_entities: the earlier entity wins
            continue
        out.append(text[done:start])
        out.append(replacement)
        done = end
    out.append(text[done:])
    return "".join(out)


def _is_latin_accent(ch: str) -> bool:
    return bool(re.match(f"[{_LATIN}]", ch))


_LENGTH: dict[str, Callable[[str], int]] = {
    "bluesky": grapheme_count,
    "mastodon": lambda text: grapheme_count(mastodon_countable_text(text)),
    "x": x_weighted_length,
}


def _unknown(platform: str) -> ValueError:
    return ValueError(f"unknown platform {platform!r}: expected one of {', '.join(_LENGTH)}")


def length(platform: str, text: str) -> int:
    """Length of `text` by `platform`'s own rule (``bluesky``, ``mastodon`` or ``x``)."""
    try:
        rule = _LENGTH[platform]
    except KeyError:
        raise _unknown(platform) from None
    return rule(text)


def fits(platform: str, text: str, limit: int) -> bool:
    """Whether `text` is within `limit` on `platform`; for Bluesky also within 3000 UTF-8 bytes."""
    if platform == "bluesky":
        if utf8_length(text) > BLUESKY_MAX_BYTES:
            return False
        if len(text) <= limit:  # never more clusters than code points: no need to count them
            return True
    return length(platform, text) <= limit


def url_spans(platform: str, text: str) -> list[tuple[int, int]]:
    """(start, end) code point offsets of the URLs `platform` counts as 23, in order.

    A splitter must never cut inside one. For ``x`` the offsets refer to the NFC form of `text` (the same
    string for almost all real text). Bluesky shortens nothing, so it reports the scheme-ful URLs
    Mastodon would link: still words a post must not be cut inside.
    """
    if platform == "x":
        return _x_url_spans(unicodedata.normalize("NFC", text))
    if platform in ("mastodon", "bluesky"):
        return _mastodon_url_spans(text)
    raise _unknown(platform)
