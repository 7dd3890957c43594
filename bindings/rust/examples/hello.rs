// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! A producer thread and a consumer over one channel (blocking API).
use mpmc::prelude::*;

fn main() -> mpmc::Result<()> {
    let (tx, rx) = mpmc::Channel::new()?.split()?;
    let producer = std::thread::spawn(move || -> mpmc::Result<()> {
        for i in 0..3 {
            tx.send(format!("hello #{i}").as_bytes())?;
        }
        Ok(()) // tx dropped: the last sender is gone, rx gets end of file
    });
    let got: Vec<String> = rx.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect();
    producer.join().expect("producer")?;
    println!("received {got:?}");
    assert_eq!(got, ["hello #0", "hello #1", "hello #2"]);
    Ok(())
}
