package spool

// sizeQueue holds the sizes of the unwritten records, oldest first, so that
// Trim knows how many bytes it frees without reading the records back.
type sizeQueue struct {
	buf  []uint32
	head int
}

func (q *sizeQueue) push(n uint32) { q.buf = append(q.buf, n) }

func (q *sizeQueue) len() int { return len(q.buf) - q.head }

// pop removes the n oldest sizes and returns their sum.
func (q *sizeQueue) pop(n int) int64 {
	var sum int64
	for _, v := range q.buf[q.head : q.head+n] {
		sum += int64(v)
	}
	q.head += n
	// Compact once the dead prefix dominates, so memory follows the depth.
	if q.head > 1024 && q.head > len(q.buf)/2 {
		q.buf = append(q.buf[:0], q.buf[q.head:]...)
		q.head = 0
	}
	return sum
}
