package sandbox

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strconv"
)

// Content kinds of [Config.ContentKind].
const (
	// ContentText is the default: a short HTML frame padded with repeated
	// lorem ipsum, which compresses far better than real pages.
	ContentText = "text"
	// ContentHTML is HTML that looks like real pages: nested markup with
	// classes and links, varied text from a vocabulary of a few thousand
	// words of uneven frequency, prices, dates, ids, inline style and
	// script. It compresses about 5-8 times with gzip or zstd, as real
	// pages do. It is drawn from the seed, so the same seed gives the same
	// pages.
	ContentHTML = "html"
)

// htmlPool holds pages of generated HTML, escaped for the inside of a JSON
// string, from which each result takes one by its task id: generating
// 100 KB per result would cost the sandbox more than the client it tests.
type htmlPool struct {
	pages [][]byte
}

// newHTMLPool generates pages of about size bytes each (after escaping):
// enough of them (up to 256, within 32 MB) that a compressor with a window
// of a few MB finds few repeats between results.
func newHTMLPool(seed int64, size int) *htmlPool {
	n := min(256, max(8, (32<<20)/max(size, 1)))
	r := rand.New(rand.NewPCG(uint64(seed), 0x47a1))
	g := &htmlGen{r: r, words: vocabulary(r, 3000)}
	g.classes = make([]string, 48) // a site's template uses few
	for i := range g.classes {
		g.classes[i] = g.words[r.IntN(200)] + "-" + g.words[r.IntN(200)]
	}
	p := &htmlPool{pages: make([][]byte, n)}
	for i := range p.pages {
		p.pages[i] = g.page(size)
	}
	return p
}

// vocabulary returns n pseudo-words of 1 to 4 syllables.
func vocabulary(r *rand.Rand, n int) []string {
	syl := []string{"ka", "lo", "ri", "men", "ta", "sor", "vel", "an", "di", "qu", "est", "ber", "no", "pa", "lin",
		"ge", "tro", "mar", "si", "ul", "ven", "cha", "por", "ex", "ti", "ra", "mo", "ne", "sta", "ple", "om", "dra"}
	words := make([]string, n)
	for i := range words {
		var b []byte
		for range 1 + r.IntN(3) + r.IntN(2) {
			b = append(b, syl[r.IntN(len(syl))]...)
		}
		words[i] = string(b)
	}
	return words
}

type htmlGen struct {
	r       *rand.Rand
	words   []string
	classes []string
	b       []byte
}

// word draws a word with a Zipf-like frequency: a few are common, most rare.
func (g *htmlGen) word() string {
	x := g.r.Float64()
	return g.words[int(x*x*x*x*float64(len(g.words)))]
}

func (g *htmlGen) text(n int) {
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ' ')
		}
		w := g.word()
		if i == 0 {
			g.b = append(g.b, w[0]-'a'+'A')
			w = w[1:]
		}
		g.b = append(g.b, w...)
		if g.r.IntN(12) == 0 {
			g.b = append(g.b, ',')
		}
	}
	g.b = append(g.b, '.')
}

func (g *htmlGen) class() {
	g.b = append(g.b, ` class=\"`...)
	g.b = append(g.b, g.classes[g.r.IntN(len(g.classes))]...)
	g.b = append(g.b, `\"`...)
}

func (g *htmlGen) link() {
	g.b = append(g.b, `<a href=\"/`...)
	g.b = append(g.b, g.word()...)
	g.b = append(g.b, '/')
	g.b = append(g.b, g.word()...)
	g.b = fmt.Appendf(g.b, "-%d", g.r.IntN(100000))
	g.b = append(g.b, `\"`...)
	g.class()
	g.b = append(g.b, '>')
	g.text(1 + g.r.IntN(4))
	g.b = append(g.b, "</a>"...)
}

// block appends one element of a page's body.
func (g *htmlGen) block(depth int) {
	switch k := g.r.IntN(10); {
	case k < 2:
		g.b = append(g.b, `<p`...)
		g.class()
		g.b = append(g.b, '>')
		for range 1 + g.r.IntN(3) {
			g.text(5 + g.r.IntN(12))
			g.b = append(g.b, ' ')
			if g.r.IntN(3) == 0 {
				g.link()
				g.b = append(g.b, ' ')
			}
		}
		g.b = append(g.b, `</p>\n`...)
	case k < 4:
		g.b = append(g.b, `<ul`...)
		g.class()
		g.b = append(g.b, `>\n`...)
		for range 2 + g.r.IntN(6) {
			g.b = append(g.b, `<li>`...)
			g.link()
			g.b = append(g.b, `</li>\n`...)
		}
		g.b = append(g.b, `</ul>\n`...)
	case k < 7:
		g.b = append(g.b, cardHead...)
		g.b = append(g.b, `<div`...)
		g.class()
		g.b = fmt.Appendf(g.b, ` data-id=\"%d\">`, g.r.IntN(1e5))
		g.b = append(g.b, `<img src=\"https://cdn.example/`...)
		g.b = fmt.Appendf(g.b, "%x.jpg", g.r.Uint32())
		g.b = append(g.b, `\" alt=\"`...)
		g.text(2 + g.r.IntN(3))
		g.b = append(g.b, `\"><span class=\"price\">`...)
		g.b = fmt.Appendf(g.b, "%d.%02d EUR", g.r.IntN(2000), g.r.IntN(100))
		g.b = append(g.b, `</span><time datetime=\"`...)
		g.b = fmt.Appendf(g.b, "2026-%02d-%02dT%02d:%02d", 1+g.r.IntN(12), 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60))
		g.b = append(g.b, `\">`...)
		g.text(2)
		g.b = append(g.b, `</time>`...)
		if depth < 3 {
			g.block(depth + 1)
		}
		g.b = append(g.b, cardTail...)
		g.b = append(g.b, `</div>\n`...)
	case k < 8:
		g.b = append(g.b, `<h2`...)
		g.class()
		g.b = append(g.b, '>')
		g.text(2 + g.r.IntN(6))
		g.b = append(g.b, `</h2>\n`...)
	case k < 9:
		g.b = append(g.b, `<script>window.__d=window.__d||[];__d.push({id:`...)
		g.b = fmt.Appendf(g.b, `%d,k:\"%x\",v:%d});</script>\n`, g.r.IntN(1e4), g.r.Uint32()&0xffff, g.r.IntN(1000))
	default:
		g.b = append(g.b, `<table`...)
		g.class()
		g.b = append(g.b, `>\n`...)
		for range 2 + g.r.IntN(5) {
			g.b = append(g.b, `<tr>`...)
			for range 3 {
				g.b = append(g.b, `<td>`...)
				if g.r.IntN(2) == 0 {
					g.b = strconv.AppendInt(g.b, int64(g.r.IntN(100000)), 10)
				} else {
					g.text(1 + g.r.IntN(2))
				}
				g.b = append(g.b, `</td>`...)
			}
			g.b = append(g.b, `</tr>\n`...)
		}
		g.b = append(g.b, `</table>\n`...)
	}
}

// The boilerplate of a product card, the same in every card as a site's
// template makes it.
const (
	cardHead = `<div class=\"card card--product js-track\" role=\"listitem\" tabindex=\"-1\" data-component=\"ProductCard\">` +
		`<div class=\"card__media ratio ratio--4x3\"><svg class=\"icon icon--heart\" width=\"24\" height=\"24\" viewBox=\"0 0 24 24\" aria-hidden=\"true\">` +
		`<path d=\"M12 21.35l-1.45-1.32C5.4 15.36 2 12.28 2 8.5 2 5.42 4.42 3 7.5 3c1.74 0 3.41.81 4.5 2.09C13.09 3.81 14.76 3 16.5 3 19.58 3 22 5.42 22 8.5c0 3.78-3.4 6.86-8.55 11.54L12 21.35z\"/></svg></div>\n`
	cardTail = `<div class=\"card__actions\"><button type=\"button\" class=\"btn btn--primary btn--small js-add-to-cart\" aria-label=\"Add to cart\">Add to cart</button>` +
		`<button type=\"button\" class=\"btn btn--ghost btn--small js-compare\">Compare</button></div></div>\n`
)

// page returns a body of at least size bytes: the part of a page after
// the head that names the task (see [htmlPool.appendPage]).
func (g *htmlGen) page(size int) []byte {
	g.b = g.b[:0]
	g.b = append(g.b, `<style>`...)
	for range 4 + g.r.IntN(6) {
		g.b = append(g.b, '.')
		g.b = append(g.b, g.word()...)
		g.b = fmt.Appendf(g.b, "{margin:%dpx;color:#%06x}", g.r.IntN(40), g.r.IntN(1<<24))
	}
	g.b = append(g.b, `</style></head>\n<body`...)
	g.class()
	g.b = append(g.b, `>\n<nav>`...)
	for range 5 + g.r.IntN(5) {
		g.link()
	}
	g.b = append(g.b, `</nav>\n<main>\n`...)
	for len(g.b) < size {
		g.block(0)
	}
	return bytes.Clone(g.b)
}

// appendPage appends a result's content, escaped for the inside of a JSON
// string and size bytes long (when size allows): a head naming the task,
// the pooled body its id picks, and the end of the page.
func (p *htmlPool) appendPage(b []byte, size int, id uint64, page int, input string, code int64) []byte {
	start := len(b)
	b = append(b, `<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>`...)
	b = appendInString(b, input)
	b = append(b, `</title><meta name=\"x-task\" content=\"`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, ` page `...)
	b = strconv.AppendInt(b, int64(page), 10)
	b = append(b, ` status `...)
	b = strconv.AppendInt(b, code, 10)
	b = append(b, `\">`...)
	const end = `</main></body></html>\n`
	body := p.pages[(id*31+uint64(page))%uint64(len(p.pages))]
	n := min(len(body), size-(len(b)-start)-len(end))
	if n > 0 {
		if body[n-1] == '\\' { // not half an escape
			n--
		}
		b = append(b, body[:n]...)
	}
	return append(b, end...)
}

// pngBase64 returns a small PNG image drawn from seed, base64-encoded as
// the API returns a headless=png screenshot.
func pngBase64(seed int64) string {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e6))
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), uint8(r.IntN(256)), 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // to memory: cannot fail
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}
