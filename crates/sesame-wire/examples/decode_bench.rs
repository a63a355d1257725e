use sesame_wire::codec::Violations;
use sesame_wire::generated::ses_v1;
use sesame_wire::query::QueryParams;
use std::time::Instant;
fn main() {
    let body = b"Action=SendEmail&Version=2010-12-01&Source=bench%40example.com&Destination.ToAddresses.member.1=rcpt%40example.org&Message.Subject.Data=Benchmark&Message.Body.Text.Data=Hello+from+the+benchmark";
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        let q = QueryParams::parse(body).unwrap();
        std::hint::black_box(&q);
    }
    let parse = t.elapsed().as_nanos() as f64 / n as f64;
    let q = QueryParams::parse(body).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        let mut v = Violations::default();
        let i =
            ses_v1::SendEmailRequest::from_query(&q, "", &sesame_wire::codec::Path::Root, &mut v)
                .unwrap();
        std::hint::black_box(v.finish(i).unwrap());
    }
    let decode = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        let s = q.get("Source").map(str::to_owned);
        let to = q.list("Destination.ToAddresses");
        let cc = q.list("Destination.CcAddresses");
        let bcc = q.list("Destination.BccAddresses");
        let subj = q.get("Message.Subject.Data").map(str::to_owned);
        let text = q.get("Message.Body.Text.Data").map(str::to_owned);
        let html = q.get("Message.Body.Html.Data").map(str::to_owned);
        let rt = q.list("ReplyToAddresses");
        std::hint::black_box((s, to, cc, bcc, subj, text, html, rt));
    }
    let old = t.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "parse {parse:.0} ns, generated decode {decode:.0} ns, hand-written reads {old:.0} ns"
    );
}
