# Independent, deliberately simple (variable-time) SAE / Dragonfly oracle for cross-checking.
import hmac, hashlib, sys
from params import params
H = {32: hashlib.sha256, 48: hashlib.sha384, 64: hashlib.sha512}
def hm(hl, k, *parts):
    return hmac.new(k, b"".join(parts), H[hl]).digest()
def kdf(hl, key, label, ctx, bits):
    out=b""; i=1
    n=(bits+7)//8
    while len(out)<n:
        out+=hm(hl,key,i.to_bytes(2,'little'),label,ctx,bits.to_bytes(2,'little')); i+=1
    out=out[:n]
    return int.from_bytes(out,'big') >> (8*n-bits), out
class C:
    def __init__(s,name,num):
        s.p,s.a,s.b,s.q,s.G=params(name); s.num=num
        s.plen=(s.p.bit_length()+7)//8; s.bits=s.p.bit_length(); s.qlen=(s.q.bit_length()+7)//8
        s.hl={19:32,20:48,21:64}[num]
    def add(s,P,Q):
        if P is None: return Q
        if Q is None: return P
        p=s.p
        if P[0]==Q[0]:
            if (P[1]+Q[1])%p==0: return None
            l=(3*P[0]*P[0]+s.a)*pow(2*P[1],-1,p)%p
        else:
            l=(Q[1]-P[1])*pow(Q[0]-P[0],-1,p)%p
        x=(l*l-P[0]-Q[0])%p
        return (x,(l*(P[0]-x)-P[1])%p)
    def mul(s,k,P):
        R=None
        for bit in bin(k)[2:]:
            R=s.add(R,R)
            if bit=='1': R=s.add(R,P)
        return R
    def neg(s,P): return (P[0],(-P[1])%s.p)
    def enc(s,P): return P[0].to_bytes(s.plen,'big')+P[1].to_bytes(s.plen,'big')
    def is_qr(s,v): return v!=0 and pow(v,(s.p-1)//2,s.p)==1
    def sqrt(s,v): return pow(v,(s.p+1)//4,s.p)
def hnp(c, profile, pw, a, b):
    ids = max(a,b)+min(a,b)
    pb = c.p.to_bytes(c.plen,'big')
    for counter in range(1,201):
        if profile=="80211":
            seed=hm(32,ids,pw,bytes([counter]))
            x,_=kdf(32,seed,b"SAE Hunting and Pecking",pb,c.bits)
            par=seed[-1]&1
            if x>=c.p: continue
        else:
            base=H[c.hl](ids+pw+bytes([counter])).digest()
            t,_=kdf(c.hl,base,b"Dragonfly Hunting And Pecking",pb,c.bits+64)
            x=t%(c.p-1)+1; par=base[-1]&1
        v=(x**3+c.a*x+c.b)%c.p
        if c.is_qr(v):
            y=c.sqrt(v)
            if y&1!=par: y=c.p-y
            return (x,y), counter
def run(c, profile, pw, a, b, ra, ma, rb, mb):
    P,ctr=hnp(c,profile,pw,a,b)
    out={"pwe":c.enc(P).hex(),"counter":ctr}
    def commit(r,m): return ((r+m)%c.q, c.neg(c.mul(m,P)))
    sa,Ea=commit(ra,ma); sb,Eb=commit(rb,mb)
    out["scalar_a"]=sa.to_bytes(c.qlen,'big').hex(); out["element_a"]=c.enc(Ea).hex()
    out["scalar_b"]=sb.to_bytes(c.qlen,'big').hex(); out["element_b"]=c.enc(Eb).hex()
    K=c.mul(ra,c.add(c.mul(sb,P),Eb))
    k=K[0].to_bytes(c.plen,'big')
    ssum=((sa+sb)%c.q).to_bytes(c.qlen,'big')
    if profile=="80211":
        keyseed=hm(32,bytes(32),k)
        _,keys=kdf(32,keyseed,b"SAE KCK and PMK",ssum,(32+32)*8)
        kck,pmk=keys[:32],keys[32:64]
        conf=hm(32,kck,(1).to_bytes(2,'little'),ssum[:0]+sa.to_bytes(c.qlen,'big'),c.enc(Ea),sb.to_bytes(c.qlen,'big'),c.enc(Eb))
    else:
        hl=c.hl
        _,keys=kdf(hl,k,b"Dragonfly Key Derivation",ssum,2*hl*8)
        kck,pmk=keys[:hl],keys[hl:]
        conf=hm(hl,kck,(1).to_bytes(2,'little'),sa.to_bytes(c.qlen,'big'),sb.to_bytes(c.qlen,'big'),c.enc(Ea),c.enc(Eb))
    out.update(k=k.hex(),kck=kck.hex(),pmk=pmk.hex(),pmkid=ssum[:16].hex(),confirm_a=conf.hex())
    return out
if __name__=="__main__":
    # Self-check against 802.11-2020 J.10 (spec 8.5).
    c=C("prime256v1",19)
    o=run(c,"80211",b"mekmitasdigoat",bytes.fromhex("4d3f2fffe387"),bytes.fromhex("a5d8aa958e3c"),
          0x992465fd3daa3c60aa6565b7f62a2a7f2e12dd12f198faf4fbed89d7ff1ace94,
          0x9507a90f777a044d6a0830b91ea3d5dd70bece44e1acffb86983b5e1bf9fb322, 5, 7)
    assert o["pwe"].startswith("da6eb7b06a1ac562"), o["pwe"]
    assert o["scalar_a"]=="2e2c0f0db52440ad146d967114ce005ce1eab0aa2c2e5c2871b774f6c2575c65"
    print("J.10 self-check ok")
    A=bytes.fromhex("0011223344556677"); B=bytes.fromhex("8899aabbccddeeff")
    for name,num,profile in [("secp384r1",20,"80211"),("secp521r1",21,"80211"),("prime256v1",19,"rfc7664"),("secp521r1",21,"rfc7664")]:
        c=C(name,num)
        ra=int.from_bytes(hashlib.sha512(b"ra%d"%num).digest()*2,'big')%c.q
        ma=int.from_bytes(hashlib.sha512(b"ma%d"%num).digest()*2,'big')%c.q
        rb=int.from_bytes(hashlib.sha512(b"rb%d"%num).digest()*2,'big')%c.q
        mb=int.from_bytes(hashlib.sha512(b"mb%d"%num).digest()*2,'big')%c.q
        o=run(c,profile,b"dragonfly 802.15.9",A,B,ra,ma,rb,mb)
        print(num,profile)
        print("  rand_a",ra.to_bytes(c.qlen,'big').hex()); print("  mask_a",ma.to_bytes(c.qlen,'big').hex())
        print("  rand_b",rb.to_bytes(c.qlen,'big').hex()); print("  mask_b",mb.to_bytes(c.qlen,'big').hex())
        for k,v in o.items(): print(" ",k,v)
