// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! A tokio task sends, another receives with a timeout in select!.
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> mpmc::Result<()> {
    let (tx, rx) = mpmc::Channel::new()?.split()?;
    let (tx, rx) = (mpmc::Async::new(tx)?, mpmc::Async::new(rx)?);
    tokio::spawn(async move {
        for i in 0..3 {
            tx.send(format!("hello #{i}").as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }); // the task ends, tx is dropped: end of file
    let mut got = Vec::new();
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(m) => got.push(String::from_utf8_lossy(&m).into_owned()),
                Err(mpmc::Error::Closed) => break,
                Err(e) => return Err(e),
            },
            // A dropped recv future takes no message.
            _ = tokio::time::sleep(Duration::from_millis(5)) => println!("tick"),
        }
    }
    println!("received {got:?}");
    assert_eq!(got, ["hello #0", "hello #1", "hello #2"]);
    Ok(())
}
